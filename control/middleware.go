package control

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

func requestID(r *http.Request) string { return middleware.GetReqID(r.Context()) }

// logRequests writes one line per request, with its request ID.
func (h *handler) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		h.log.Info("request", "method", r.Method, "path", r.URL.EscapedPath(), "status", ww.Status(),
			"bytes", ww.BytesWritten(), "ms", time.Since(start).Milliseconds(), "request_id", requestID(r))
	})
}

// recoverer turns a panic into a 500 (or lets http.ErrAbortHandler cut the
// connection, which is how a stream that fails half-way is ended).
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("panic in handler", "panic", v, "path", r.URL.EscapedPath(), "request_id", requestID(r))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
