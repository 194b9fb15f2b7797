package control

import (
	"net/http"
	"time"
)

// NewServer wraps the handler in an http.Server whose every wait is bounded:
// headers within 10 s, idle connections closed after 2 min. Bodies are
// bounded by the handler (body.go: a total for JSON bodies, a minimum rate
// for uploads, since a model of several GB may take long but must never
// stall), answers per chunk (stallTimeout), and connections by Listen.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
