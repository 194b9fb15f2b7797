package resources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/bufpool"
	"github.com/azaion/loader/resources/cache"
	"github.com/azaion/loader/resources/cdn"
)

// StoreConfig wires a Store.
type StoreConfig struct {
	API         *api.Client  // the Resource API
	Cache       *cache.Cache // the local cache of big parts
	ResourceKey Secret       // resource_key of PROTOCOL §1
	Hardware    string       // the device's hardware line
	Folders     []string     // folders always listed
	CDN         cdn.Options  // how the CDN client is built once cdn.yaml is known
	// ReadAheadBudget is the plaintext, in bytes, that the read-ahead
	// windows of all readers hold between them at most, beyond the one
	// chunk each read needs: 0 is DefaultReadAheadBudget.
	ReadAheadBudget int64
	Logger          *slog.Logger
}

// Store reads and writes resources: small parts through the Resource API,
// big parts through the local cache and the CDN, decrypted on the fly. The
// mount and the control API both use one Store.
type Store struct {
	api      *api.Client
	cache    *cache.Cache
	key      []byte
	held     *heldSmalls // small parts of versions opened, in memory only
	hardware string
	folders  []string
	cdnOpt   cdn.Options
	log      *slog.Logger

	mu       sync.RWMutex
	session  *session         // nil until a login succeeds
	sizes    map[string]int64 // plaintext size by version
	opened   map[string]bool  // folder/name opened in this process
	watchers []func(folder, name string)
}

// session is what a successful login yields. It is never changed: a login
// swaps in a new one, and an operation keeps the one it started with, so
// that its token, API key and CDN client are one user's throughout.
type session struct {
	email  string
	api    *api.Session
	apiKey string // api_key(email, password, hardware)
	cdn    *cdn.Client
}

// DefaultReadAheadBudget lets 16 readers at once (a device starting its
// model servers) stay within 128 MiB of RSS: each keeps two or three chunks
// ahead, and every reader still has the chunk it reads besides.
const DefaultReadAheadBudget = 32 << 20

// prefill readies the read path's own buffers once per process.
var prefill sync.Once

// NewStore returns a Store that is not logged in yet.
func NewStore(cfg StoreConfig) *Store {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var folders []string
	for _, f := range cfg.Folders {
		if ValidName(f) {
			folders = append(folders, f)
		}
	}
	// The first open's GETs, and its first read, find their buffers ready:
	// on a VM a fresh MiB is milliseconds of page faults.
	cfg.Cache.Prefill(2)
	budget := cfg.ReadAheadBudget
	if budget <= 0 {
		budget = DefaultReadAheadBudget
	}
	cfg.Cache.SetReadAheadBudget(bufpool.NewBudget(budget))
	prefill.Do(func() {
		chunkBufs.Prefill(1)
		cipherBufs.Prefill(1)
	})
	return &Store{
		api:      cfg.API,
		cache:    cfg.Cache,
		key:      AESKey(cfg.ResourceKey.Reveal()),
		held:     newHeldSmalls(log),
		hardware: cfg.Hardware,
		folders:  folders,
		cdnOpt:   cfg.CDN,
		log:      log,
		sizes:    map[string]int64{},
		opened:   map[string]bool{},
	}
}

// Login logs in to the Resource API, fetches and decrypts cdn.yaml, and sets
// up the CDN client (flow F1). On any failure the Store keeps its previous
// session, if it had one.
func (s *Store) Login(ctx context.Context, email, password string) error {
	as, err := s.api.LoginSession(ctx, email, password)
	if err != nil {
		return fmt.Errorf("login: %w", apiError(err))
	}
	sess := &session{email: email, api: as, apiKey: APIKey(email, password, s.hardware)}
	raw, err := s.get(ctx, sess, "", "cdn.yaml")
	if err != nil {
		return fmt.Errorf("login: cdn.yaml: %w", err)
	}
	cfg, err := cdn.ParseConfig(raw)
	if err != nil {
		return fmt.Errorf("login: cdn.yaml: %w", err)
	}
	sess.cdn, err = cdn.New(cfg, s.cdnOpt)
	if err != nil {
		return fmt.Errorf("login: cdn: %w", err)
	}
	s.mu.Lock()
	other := s.session != nil && NormEmail(s.session.email) != NormEmail(email)
	s.session = sess
	s.mu.Unlock()
	if other {
		// The small parts held were given to another user.
		s.held.clear()
	}
	s.log.Info("logged in", "email", email, "cdn", cfg.Host)
	return nil
}

// Logout ends the session and zeroes the small parts held in memory: from
// then on an open needs a login and the Resource API.
func (s *Store) Logout() {
	s.mu.Lock()
	s.session = nil
	s.mu.Unlock()
	s.held.clear()
}

// LoggedIn reports whether a login has succeeded.
func (s *Store) LoggedIn() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.session != nil
}

// CacheDir is where big parts are cached.
func (s *Store) CacheDir() string { return s.cache.Dir() }

// Close logs out (Logout), releases the memory that held small parts, and
// writes what the cache has not saved yet.
func (s *Store) Close() error {
	s.Logout()
	s.held.close()
	return s.cache.Close()
}

// cacheKey is the cache's chunk key of the version whose small part is
// small.
func (s *Store) cacheKey(small []byte) cache.Key { return cache.NewKey(s.key, small) }

// Watch registers fn to be told of every resource this Store uploads, so
// that the mount can drop the kernel's pages of the old version.
func (s *Store) Watch(fn func(folder, name string)) {
	s.mu.Lock()
	s.watchers = append(s.watchers, fn)
	s.mu.Unlock()
}

func (s *Store) current() (*session, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.session == nil {
		return nil, ErrNotLoggedIn
	}
	return s.session, nil
}

// get fetches a file from the Resource API and decrypts it with the
// session's API key.
func (s *Store) get(ctx context.Context, sess *session, folder, file string) ([]byte, error) {
	body, err := sess.api.Get(ctx, folder, file, s.hardware)
	if err != nil {
		return nil, apiError(err)
	}
	plain, err := Decrypt(sess.apiKey, body)
	if err != nil {
		return nil, fmt.Errorf("%s/%s from the Resource API: %w", folder, file, err)
	}
	return plain, nil
}

// apiError maps a Resource API client error to the sentinels.
func apiError(err error) error {
	if errors.Is(err, api.ErrNotLoggedIn) {
		return fmt.Errorf("%w: %w", ErrNotLoggedIn, err)
	}
	var se *api.StatusError
	if !errors.As(err, &se) {
		return fmt.Errorf("%w: %w", ErrUpstream, err)
	}
	switch se.Code {
	case 400:
		return fmt.Errorf("%w: %w", ErrBadName, err)
	case 401:
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case 403:
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	case 404:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case 409:
		return fmt.Errorf("%w: %w", ErrHardwareMismatch, err)
	}
	return fmt.Errorf("%w: %w", ErrUpstream, err)
}

// cdnError maps a CDN client error to the sentinels.
func cdnError(err error) error {
	switch {
	case errors.Is(err, cdn.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, cdn.ErrBadFolder), errors.Is(err, cdn.ErrBadName):
		return fmt.Errorf("%w: %w", ErrBadName, err)
	case errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUpstream, err)
}

// Folders lists the configured folders, the CDN's and the local cache's.
// A CDN that cannot be listed is logged, not fatal.
func (s *Store) Folders(ctx context.Context) ([]string, error) {
	set := map[string]bool{}
	for _, f := range s.folders {
		set[f] = true
	}
	if cached, err := s.cache.List(); err == nil {
		for f := range cached {
			set[f] = true
		}
	}
	if sess, err := s.current(); err == nil {
		lctx, cancel := listContext(ctx)
		remote, err := sess.cdn.Folders(lctx)
		cancel()
		if err != nil {
			s.log.Warn("list CDN folders", "err", err)
		}
		for _, f := range remote {
			set[f] = true
		}
	}
	return sorted(set), nil
}

// HasFolder reports whether folder is one that Folders lists or that has
// resources, as a lookup of it in the mount asks: a configured folder or
// one the cache holds answers at once, without the CDN (the first byte of
// a cold open would otherwise wait for a listing of every folder).
func (s *Store) HasFolder(ctx context.Context, folder string) (bool, error) {
	if !ValidName(folder) {
		return false, nil
	}
	if slices.Contains(s.folders, folder) {
		return true, nil
	}
	if cached, err := s.cache.List(); err == nil && cached[folder] != nil {
		return true, nil
	}
	folders, err := s.Folders(ctx)
	if err != nil || slices.Contains(folders, folder) {
		return err == nil, err
	}
	names, err := s.List(ctx, folder)
	return len(names) > 0, err
}

// List lists the resources of a folder known to the CDN or the local cache.
// When the CDN cannot be listed it lists the cached names, and fails (an
// ErrUpstream) when the cache knows none.
func (s *Store) List(ctx context.Context, folder string) ([]string, error) {
	if !ValidName(folder) {
		return nil, fmt.Errorf("%w: folder %q", ErrBadName, clip(folder))
	}
	set := map[string]bool{}
	if cached, err := s.cache.List(); err == nil {
		for _, n := range cached[folder] {
			set[n] = true
		}
	}
	var cdnErr error
	if sess, err := s.current(); err == nil {
		lctx, cancel := listContext(ctx)
		remote, err := sess.cdn.List(lctx, folder)
		cancel()
		if err != nil && !errors.Is(err, cdn.ErrNotFound) && !errors.Is(err, cdn.ErrBadFolder) {
			cdnErr = err
		}
		for _, n := range remote {
			set[n] = true
		}
	}
	for n := range set {
		if !ValidName(n) {
			delete(set, n)
		}
	}
	if cdnErr != nil {
		// What the cache knows is listed; an empty listing would be a lie
		// a model runtime acts on ("model not found"), so with nothing
		// known the listing fails.
		if len(set) == 0 {
			return nil, fmt.Errorf("list %s: CDN: %w", folder, cdnError(cdnErr))
		}
		s.log.Warn("list CDN folder, listing the cached names only", "folder", folder, "err", cdnErr)
	}
	return sorted(set), nil
}

// listContext gives a CDN listing at most half the time ctx has left, so
// that with the CDN stalled the names the cache knows still come back in
// time (ls of the mount keeps answering).
func listContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithTimeout(ctx, time.Until(dl)/2)
	}
	return context.WithCancel(ctx)
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
