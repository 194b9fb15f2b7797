// Package control serves the loader's control API of PROTOCOL §6 (login,
// load, upload, prefetch, unlock, health and status) over a Store, with chi, and the
// loader's metrics on GET /metrics, its backends' counted by LoaderMetrics.
// It knows nothing of S3, JWTs or CBC: those live behind the Store.
package control

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/azaion/loader/control/unlock"
	"github.com/azaion/loader/resources"
)

// Store is what the control API needs from *resources.Store.
type Store interface {
	Login(ctx context.Context, email, password string) error
	LoggedIn() bool
	Open(ctx context.Context, folder, name string) (*resources.Resource, error)
	Upload(ctx context.Context, folder, name string, r io.Reader) (int64, error)
	CacheDir() string
}

// Unlocker is what the control API needs from *unlock.Task.
type Unlocker interface {
	Start(ctx context.Context, email, password string) (unlock.Status, error)
	Status() unlock.Status
}

// DefaultMaxUploadBytes bounds an upload's body when the config does not.
const DefaultMaxUploadBytes = 16 << 30

// Config wires the handler.
type Config struct {
	Store          Store
	Unlock         Unlocker // nil: /unlock answers 501
	MaxUploadBytes int64    // 0: DefaultMaxUploadBytes
	Logger         *slog.Logger
	// Listen is the listen address; Hosts are more names the Host header
	// may carry besides localhost (guard.go).
	Listen string
	Hosts  []string
	// Token, when set, is the bearer token every endpoint but /health
	// wants (control_token).
	Token string
	// Registry is served on GET /metrics, with the control API's own
	// metrics added to it; nil: a registry of those alone.
	Registry *prometheus.Registry
	// Version is the loader's version, reported by GET /status.
	Version string
	// Build names the binary in azaion_loader_build_info.
	Build BuildInfo
	// BodyTimeout bounds reading a whole request body but an upload's;
	// 0: DefaultBodyTimeout.
	BodyTimeout time.Duration
	// An upload's body must bring UploadMinBytes in every UploadWindow
	// spent waiting for it, or the connection is cut; 0:
	// DefaultUploadMinBytes, DefaultUploadWindow.
	UploadMinBytes int64
	UploadWindow   time.Duration
	// Prefetcher works POST /prefetch; nil: one of the handler's own,
	// over Store, its metrics in Registry, its fetches unbounded by a
	// lifetime (each is bounded by its reads' timeouts).
	Prefetcher *Prefetcher
}

type handler struct {
	store     Store
	unlock    Unlocker
	maxUpload int64
	log       *slog.Logger
	version   string

	token    string   // guard.go
	hosts    []string // Host names allowed besides localhost
	listenIP net.IP   // the listen address, when an IP
	anyIP    bool     // listening on every interface: any IP literal Host

	metrics    *httpMetrics
	prefetcher *Prefetcher // prefetch.go

	bodyTimeout    time.Duration // body.go
	uploadMinBytes int64
	uploadWindow   time.Duration
}

// NewHandler builds the chi router of the control API.
func NewHandler(cfg Config) http.Handler {
	h := &handler{store: cfg.Store, unlock: cfg.Unlock, maxUpload: cfg.MaxUploadBytes, log: cfg.Logger, version: cfg.Version}
	h.token, h.hosts = cfg.Token, append([]string(nil), cfg.Hosts...)
	h.setListen(cfg.Listen)
	if h.maxUpload <= 0 {
		h.maxUpload = DefaultMaxUploadBytes
	}
	h.bodyTimeout, h.uploadMinBytes, h.uploadWindow = cfg.BodyTimeout, cfg.UploadMinBytes, cfg.UploadWindow
	if h.bodyTimeout <= 0 {
		h.bodyTimeout = DefaultBodyTimeout
	}
	if h.uploadMinBytes <= 0 {
		h.uploadMinBytes = DefaultUploadMinBytes
	}
	if h.uploadWindow <= 0 {
		h.uploadWindow = DefaultUploadWindow
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	registerLoaderGauges(reg, cfg.Build, cfg.Store)
	h.metrics = newHTTPMetrics(reg)
	h.prefetcher = cfg.Prefetcher
	if h.prefetcher == nil {
		h.prefetcher = NewPrefetcher(PrefetchConfig{Store: cfg.Store, Logger: h.log, Registry: reg})
	}
	r := chi.NewRouter()
	r.Use(requestIDs, h.bodyDeadline, h.logRequests, h.metrics.count, h.recoverer, h.guard)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { writeError(w, http.StatusNotFound, "no such endpoint") })
	// HEAD of a GET route is the GET without its body (RFC 9110 §9.1).
	r.Use(middleware.GetHead)
	r.MethodNotAllowed(methodNotAllowed(r))
	r.Get("/health", h.health)
	r.Get("/status", h.status)
	r.Post("/login", h.login)
	r.Post("/load/{filename}", h.load)
	r.Post("/upload/{filename}", h.upload)
	r.Post("/prefetch", h.prefetch)
	r.Post("/unlock", h.startUnlock)
	r.Get("/unlock/status", h.unlockStatus)
	r.Method(http.MethodGet, "/metrics", metricsHandler(reg))
	r.Get("/openapi.json", serveOpenAPI)
	h.metrics.knowRoutes(r)
	return r
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"status":        "healthy",
		"authenticated": h.store.LoggedIn(),
		"modelCacheDir": h.store.CacheDir(),
		"version":       h.version,
		"prefetch":      map[string]any{"resources": h.prefetcher.Status()},
	})
}
