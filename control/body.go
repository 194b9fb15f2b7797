package control

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Bounds on reading request bodies (Config.BodyTimeout, UploadMinBytes and
// UploadWindow override them).
const (
	// DefaultBodyTimeout bounds the whole body of every request but an
	// upload: JSON bodies are at most 64 KiB.
	DefaultBodyTimeout = 10 * time.Second
	// An upload's body must bring DefaultUploadMinBytes in every
	// DefaultUploadWindow of waiting for it: a minimum rate, not a total,
	// since a model of several GB may take long.
	DefaultUploadMinBytes = 64 << 10
	DefaultUploadWindow   = 30 * time.Second
)

// errBodyTimeout is a request body that did not arrive in time.
var errBodyTimeout = errors.New("request body too slow")

// bodyDeadline gives every request that has a body a read deadline of
// bodyTimeout for all of it; the deadline is lifted when the body ends, so
// that a long answer (a /load stream, a login) is not cut by it. /upload
// turns it into a minimum rate (timedBody.minRate). A request whose body is
// never read is bounded too: the server discards what is left of it under
// the same deadline before it reuses the connection.
func (h *handler) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Now().Add(h.bodyTimeout))
			r.Body = &timedBody{body: r.Body, rc: rc, total: h.bodyTimeout}
		}
		next.ServeHTTP(w, r)
	})
}

// timedBody is a request body under a read deadline: a total one, or, after
// minRate, one that moves on with every minBytes that arrive.
type timedBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	total time.Duration

	// Rate mode: minBytes must arrive within window of time spent
	// waiting for them. Only the time blocked in Read counts, so the
	// time the loader itself spends (writing to the CDN) never cuts a
	// client off.
	minBytes int64
	window   time.Duration
	got      int64
	waited   time.Duration

	ended bool
}

// minRate switches b to rate mode.
func (b *timedBody) minRate(minBytes int64, window time.Duration) {
	b.minBytes, b.window = minBytes, window
}

func (b *timedBody) Read(p []byte) (int, error) {
	if b.ended {
		return 0, io.EOF
	}
	var start time.Time
	if b.window > 0 {
		start = time.Now()
		b.rc.SetReadDeadline(start.Add(b.window - b.waited))
	}
	n, err := b.body.Read(p)
	if b.window > 0 {
		if b.got += int64(n); b.got >= b.minBytes {
			b.got, b.waited = 0, 0
		} else {
			b.waited += time.Since(start)
		}
	}
	switch {
	case err == io.EOF:
		b.ended = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		if b.window > 0 {
			err = fmt.Errorf("%w: less than %d KiB in %v", errBodyTimeout, b.minBytes>>10, b.window)
		} else {
			err = fmt.Errorf("%w: not all received within %v", errBodyTimeout, b.total)
		}
	}
	return n, err
}

func (b *timedBody) Close() error { return b.body.Close() }

// uploadRate puts an upload's body under the minimum rate.
func (h *handler) uploadRate(r *http.Request) {
	if b, ok := r.Body.(*timedBody); ok {
		b.minRate(h.uploadMinBytes, h.uploadWindow)
	}
}
