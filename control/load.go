package control

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/bufpool"
)

const (
	// openTimeout bounds finding a resource: small part and CDN stat.
	openTimeout = 60 * time.Second
	// stallTimeout bounds each chunk of a stream: a client that stops
	// reading, or a backend that stops answering, ends the request.
	stallTimeout = 60 * time.Second
	// streamChunk is how much plaintext one read of a stream asks for, and
	// streamDepth how many such reads run ahead of the writer.
	streamChunk = 1 << 20
	streamDepth = 4
)

type loadRequest struct {
	Filename *string `json:"filename"`
	Folder   *string `json:"folder"`
}

// pathName is the {filename} of a route, unescaped and checked.
func pathName(r *http.Request) (string, error) {
	name, err := url.PathUnescape(chi.URLParam(r, "filename"))
	if err != nil || !resources.ValidName(name) {
		return "", fmt.Errorf("%w: filename %q", resources.ErrBadName, clip(chi.URLParam(r, "filename")))
	}
	return name, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// load is flow F2: the plaintext, streamed with its exact Content-Length.
func (h *handler) load(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r)
	if err != nil {
		h.fail(w, r, "load", err)
		return
	}
	var req loadRequest
	if err := readJSON(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	if req.Folder == nil {
		writeError(w, http.StatusUnprocessableEntity, "folder is required")
		return
	}
	if req.Filename != nil && *req.Filename != "" && !resources.ValidName(*req.Filename) {
		h.fail(w, r, "load", fmt.Errorf("%w: filename %q", resources.ErrBadName, clip(*req.Filename)))
		return
	}
	if err := resources.CheckNames(*req.Folder, name); err != nil {
		h.fail(w, r, "load", err)
		return
	}
	octx, cancel := context.WithTimeout(r.Context(), openTimeout)
	res, err := h.store.Open(octx, *req.Folder, name)
	cancel()
	if err != nil {
		h.fail(w, r, "load", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(res.Size(), 10))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	err = copyAt(r.Context(), res.Reader, res.Size(), func(p []byte) error {
		rc.SetWriteDeadline(time.Now().Add(stallTimeout))
		_, err := w.Write(p)
		return err
	})
	if err != nil {
		// The status is sent: cutting the connection is the only way left
		// to tell the client that the body is incomplete.
		h.log.Error("load: stream failed", "folder", *req.Folder, "name", name, "err", err, "request_id", requestID(r))
		panic(http.ErrAbortHandler)
	}
}

// loadBufs holds the buffers of the reads that read-ahead does not serve
// from its own chunks, shared by every /load: a buffer made for each MiB
// sent is one the GC has to give back to the OS and take again under
// serve's memory limit.
var loadBufs = bufpool.New(streamChunk, 2*streamDepth)

// copyAt streams size bytes of src to write in order, with streamDepth reads
// of streamChunk bytes running ahead, so that fetching and decrypting the
// next chunks overlaps with sending this one. Each read is bounded by
// stallTimeout. The bytes go out from where the read left them: the
// read-ahead's chunks (resources.Span) or a buffer of loadBufs.
func copyAt(ctx context.Context, src *resources.Reader, size int64, write func([]byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		span resources.Span
		err  error
	}
	chunks := (size + streamChunk - 1) / streamChunk
	slots := make(chan chan result, streamDepth)
	defer func() {
		cancel()
		// The reads still running end within stallTimeout; their
		// buffers go back when they do.
		go func() {
			for ch := range slots {
				(<-ch).span.Release()
			}
		}()
	}()
	go func() {
		defer close(slots)
		for i := int64(0); i < chunks; i++ {
			ch := make(chan result, 1)
			select {
			case slots <- ch:
			case <-ctx.Done():
				return
			}
			go func(off int64) {
				n := int(min(streamChunk, size-off))
				rctx, rcancel := context.WithTimeout(ctx, stallTimeout)
				defer rcancel()
				s, err := readSpan(rctx, src, n, off)
				if err != nil && ctx.Err() == nil && rctx.Err() == nil {
					// A fetch this read joined may have failed for an
					// earlier reader (a CDN that has just come back):
					// one fresh try before the stream is cut.
					s, err = readSpan(rctx, src, n, off)
				}
				ch <- result{s, err}
			}(i * streamChunk)
		}
	}()
	var done int64
	for ch := range slots {
		res := <-ch
		if res.err != nil {
			return fmt.Errorf("read at %d: %w", done, res.err)
		}
		for _, b := range res.span.Bytes {
			if err := write(b); err != nil {
				res.span.Release()
				return err
			}
			done += int64(len(b))
		}
		res.span.Release()
	}
	if done != size {
		return ctx.Err()
	}
	return nil
}

// readSpan reads the n bytes of plaintext at off, as slices of the
// read-ahead's chunks or in a buffer of loadBufs.
func readSpan(ctx context.Context, src *resources.Reader, n int, off int64) (resources.Span, error) {
	s, err := src.ReadSpan(ctx, n, off, loadBufs)
	if s.Len() == n {
		return s, nil
	}
	s.Release()
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return resources.Span{}, err
}
