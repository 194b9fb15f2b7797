package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// maxLogString bounds every client-supplied string that reaches a log line
// (request ID, method, path, Host, Origin, email): a client must not be able
// to make the loader write, or keep, more than this per field.
const maxLogString = 96

// logSafe is s for a log line: bytes outside printable ASCII are escaped as
// \xNN, and the result is cut after limit bytes, marked with "…" and the
// original length.
func logSafe(s string, limit int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\' {
			clean = false
			break
		}
	}
	if clean && len(s) <= limit {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc string
		switch {
		case c == '\\':
			esc = `\\`
		case c < 0x20 || c > 0x7e:
			esc = `\x` + hex.EncodeToString([]byte{c})
		}
		if b.Len()+max(len(esc), 1) > limit {
			b.WriteString("…(" + strconv.Itoa(len(s)) + " bytes)")
			break
		}
		if esc != "" {
			b.WriteString(esc)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// reqIDKey is the context key of a request's ID.
type reqIDKey struct{}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(reqIDKey{}).(string)
	return id
}

// maxRequestID bounds an X-Request-Id taken from the client.
const maxRequestID = 64

// requestIDs gives each request an ID for its log lines: the client's
// X-Request-Id made safe and cut to maxRequestID bytes, else one of ours.
func requestIDs(next http.Handler) http.Handler {
	var prefix [4]byte
	rand.Read(prefix[:])
	p := hex.EncodeToString(prefix[:]) + "-"
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" {
			id = p + strconv.FormatUint(seq.Add(1), 10)
		} else {
			id = logSafe(id, maxRequestID)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqIDKey{}, id)))
	})
}

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
		h.log.Log(r.Context(), level, "request", "method", logSafe(r.Method, 16), "path", logPath(r), "status", ww.Status(),
			"bytes", ww.BytesWritten(), "dur_ms", float64(time.Since(start).Microseconds())/1000, "request_id", requestID(r))
	})
}

// logPath is a request's path for a log line.
func logPath(r *http.Request) string { return logSafe(r.URL.EscapedPath(), maxLogString) }

// recoverer turns a panic into a 500 (or lets http.ErrAbortHandler cut the
// connection, which is how a stream that fails half-way is ended).
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("panic in handler", "panic", v, "path", logPath(r), "request_id", requestID(r))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
