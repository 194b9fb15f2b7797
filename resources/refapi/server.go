package refapi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/names"
)

const (
	defaultTTL       = time.Hour
	defaultMaxUpload = 64 << 20
	// maxJSON bounds a JSON request body.
	maxJSON = 1 << 20
)

// Route names as counted by Requests.
const (
	RouteLogin       = "POST /login"
	RouteGet         = "POST /resources/get/{folder}"
	RouteUpload      = "POST /resources/{folder}"
	RouteKeyFragment = "GET /binary-split/key-fragment"
)

// Server is the reference Resource API. It is safe for concurrent use.
type Server struct {
	byEmail     map[string]*User // by resources.NormEmail
	byID        map[string]*User
	store       *store
	key         []byte
	ttl         time.Duration
	fragment    []byte
	maxUpload   int64
	uploadRoles map[string]bool
	log         *slog.Logger
	now         func() time.Time

	down     atomic.Bool                               // SetDown
	onStored atomic.Pointer[func(folder, name string)] // OnStored

	mu       sync.Mutex
	bindings map[string]string // user id → hw_hash
	counts   map[string]int
}

// New checks cfg, prepares DataDir and stores cfg.Files.
func New(cfg Config) (*Server, error) {
	s := &Server{
		byEmail:   make(map[string]*User),
		byID:      make(map[string]*User),
		key:       cfg.SigningKey,
		ttl:       cfg.TokenTTL,
		fragment:  cfg.KeyFragment,
		maxUpload: cfg.MaxUpload,
		log:       cfg.Logger,
		now:       cfg.Now,
		bindings:  make(map[string]string),
		counts:    make(map[string]int),
	}
	for i := range cfg.Users {
		u := cfg.Users[i]
		if u.ID == "" || resources.NormEmail(u.Email) == "" || u.Password == "" {
			return nil, fmt.Errorf("refapi: user %d: id, email and password are required", i)
		}
		e := resources.NormEmail(u.Email)
		if s.byEmail[e] != nil || s.byID[u.ID] != nil {
			return nil, fmt.Errorf("refapi: user %d: duplicate id or email", i)
		}
		s.byEmail[e], s.byID[u.ID] = &u, &u
	}
	if len(s.key) == 0 {
		s.key = make([]byte, 32)
		if _, err := rand.Read(s.key); err != nil {
			return nil, fmt.Errorf("refapi: signing key: %w", err)
		}
	}
	if s.ttl <= 0 {
		s.ttl = defaultTTL
	}
	if s.maxUpload <= 0 {
		s.maxUpload = defaultMaxUpload
	}
	if len(cfg.UploadRoles) > 0 {
		s.uploadRoles = make(map[string]bool)
		for _, r := range cfg.UploadRoles {
			s.uploadRoles[r] = true
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	st, err := newStore(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("refapi: %w", err)
	}
	s.store = st
	for _, f := range cfg.Files {
		if err := s.Put(f.Folder, f.Name, f.Data); err != nil {
			return nil, fmt.Errorf("refapi: seed: %w", err)
		}
	}
	return s, nil
}

// Handler is the chi router of PROTOCOL §3.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Post("/login", s.login)
	// Wildcards, not {folder}, so that "a/b" or "../x" reach the handler
	// and get a 400 rather than the router's 404.
	r.Post("/resources/get/*", s.get)
	r.Post("/resources/*", s.upload)
	r.Get("/binary-split/key-fragment", s.keyFragment)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	return s.outage(r)
}

// SetDown takes the API down (true) or brings it back (false), for tests
// of a Resource API that disappears mid-update. While it is down, every
// request's connection is closed before any answer, as a server that
// crashed or a network that broke leaves a client: no status, and nothing
// is read or stored.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// OnStored makes every upload call fn once its file is stored, before the
// answer goes out (nil: none), so that a test can act in the window
// between a loader's upload steps.
func (s *Server) OnStored(fn func(folder, name string)) {
	if fn == nil {
		s.onStored.Store(nil)
		return
	}
	s.onStored.Store(&fn)
}

// outage closes the connection of every request while the API is down.
func (s *Server) outage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.down.Load() {
			next.ServeHTTP(w, r)
			return
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			return
		}
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	})
}

// Put stores a file as an upload would, e.g. cdn.yaml in the empty folder.
func (s *Server) Put(folder, fileName string, data []byte) error {
	if !validFolderName(folder, fileName) {
		return fmt.Errorf("put: %w", resources.ErrBadName)
	}
	if err := s.store.put(folder, fileName, bytesReader(data)); err != nil {
		return fmt.Errorf("put %s/%s: %w", folder, fileName, err)
	}
	return nil
}

// ResetBinding clears the hardware binding of the user with this email, as
// an administrator would.
func (s *Server) ResetBinding(email string) {
	u := s.byEmail[resources.NormEmail(email)]
	if u == nil {
		return
	}
	s.mu.Lock()
	delete(s.bindings, u.ID)
	s.mu.Unlock()
}

// Requests counts the calls per route (RouteLogin, RouteGet, …), whatever
// their answer.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

func (s *Server) count(route string) {
	s.mu.Lock()
	s.counts[route]++
	s.mu.Unlock()
}

// validFolderName is the name rule of PROTOCOL §2 plus the empty folder,
// which holds only cdn.yaml. A stored file is a resource name with its
// suffix (model.onnx.small), so it may be up to 255 bytes.
func validFolderName(folder, name string) bool {
	if folder == "" {
		return name == "cdn.yaml"
	}
	return resources.ValidName(folder) && names.File(name)
}

var (
	errTooLarge = errors.New("too large")
	errBadBody  = errors.New("malformed body")
)
