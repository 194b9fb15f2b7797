package control

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

func requestID(r *http.Request) string { return middleware.GetReqID(r.Context()) }

// ProbeUserAgent is the User-Agent of the loader's own health probe (the
// systemd watchdog's GET /health), whose requests are logged at DEBUG: a
// probe every few seconds is not worth an INFO line.
const ProbeUserAgent = "azaion-loader-watchdog"

// logRequests writes one line per request, with its request ID and its
// duration in milliseconds to the microsecond (dur_ms).
func (h *handler) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		level := slog.LevelInfo
		if r.URL.Path == "/health" && r.UserAgent() == ProbeUserAgent {
			level = slog.LevelDebug
		}
		h.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.EscapedPath(), "status", ww.Status(),
			"bytes", ww.BytesWritten(), "dur_ms", float64(time.Since(start).Microseconds())/1000, "request_id", requestID(r))
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
