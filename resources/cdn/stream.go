package cdn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Stream returns the big part's bytes [off, off+n) as one ranged GET that
// is read as it arrives, pinned to etag when it is not empty (a replaced
// object gives ErrChanged, never its bytes). It is ReadAt for a long range:
// a caller that reads it slowly holds the server back by TCP's flow control,
// not by buffering, and may close it early. A body cut short or reset, or
// one that sends nothing for the RangeTimeout, resumes from where it
// stopped, with the same ETag. The GET is made at the first Read; ctx
// bounds it all. The reader ends with io.EOF at off+n or at the object's
// end, whichever comes first.
func (c *Client) Stream(ctx context.Context, folder, name, etag string, off, n int64) (*RangeReader, error) {
	bucket, key, err := c.locate(folder, name)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("stream %s/%s: range %d+%d", bucket, key, off, n)
	}
	return &RangeReader{c: c, ctx: ctx, bucket: bucket, key: key, etag: etag, off: off, end: off + n}, nil
}

// RangeReader is one streamed range; see Client.Stream. It is not safe for
// concurrent use.
type RangeReader struct {
	c           *Client
	ctx         context.Context // the caller's, as an http.Request's
	bucket, key string
	etag        string
	off, end    int64 // the next byte, and where the range ends

	body    io.ReadCloser
	cancel  context.CancelFunc // of the current GET
	timer   *time.Timer        // cancels the current GET when it stalls
	stalled atomic.Bool
	resumes int   // in a row, without streamResumeReset bytes between
	since   int64 // bytes the current GET has sent
	err     error // sticky
}

// streamResumeReset is how many bytes a resumed GET must send for its
// resume not to count against maxResumes: a long stream may be cut several
// times over its life, but not over and over without progress.
const streamResumeReset = 4 << 20

// Read reads the next bytes of the range.
func (r *RangeReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.off >= r.end {
			r.fail(io.EOF)
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.open(); err != nil {
				if errors.Is(err, errResume) && r.resume(err) {
					continue
				}
				return 0, r.fail(err)
			}
		}
		r.timer.Reset(r.c.opt.RangeTimeout)
		n, err := r.body.Read(p[:min(int64(len(p)), r.end-r.off)])
		r.timer.Stop()
		r.off += int64(n)
		r.since += int64(n)
		if r.since >= streamResumeReset {
			r.resumes = 0
		}
		switch {
		case err == nil || n > 0 && (errors.Is(err, io.EOF) && r.off >= r.end):
			return n, nil
		case n > 0:
			// The bytes are good; the next Read resumes, or fails.
			r.closeBody()
			if r.ctx.Err() == nil {
				r.resume(fmt.Errorf("%w: %w", errResume, err))
			}
			return n, nil
		case errors.Is(err, io.EOF) && r.off >= r.end:
			r.fail(io.EOF)
			return 0, io.EOF
		}
		r.closeBody()
		if r.ctx.Err() != nil {
			return 0, r.fail(fmt.Errorf("read %s/%s: %w", r.bucket, r.key, context.Cause(r.ctx)))
		}
		if r.stalled.Load() {
			err = fmt.Errorf("no bytes for %v: %w", r.c.opt.RangeTimeout, err)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if !r.resume(fmt.Errorf("%w: %w", errResume, err)) {
			return 0, r.err
		}
	}
}

// resume counts a resume after err, or gives up with it.
func (r *RangeReader) resume(err error) bool {
	r.resumes++
	if r.resumes > maxResumes {
		r.fail(fmt.Errorf("read %s/%s at %d: gave up after %d resumes: %w", r.bucket, r.key, r.off, maxResumes, err))
		return false
	}
	r.c.log.Debug("cdn: resuming streamed read", "bucket", r.bucket, "key", r.key, "at", r.off, "err", err)
	return true
}

// open makes the GET of the rest of the range. An error wrapping errResume
// may be tried again.
func (r *RangeReader) open() error {
	ctx, cancel := context.WithCancel(r.ctx)
	r.stalled.Store(false)
	timer := time.AfterFunc(r.c.opt.RangeTimeout, func() {
		r.stalled.Store(true)
		cancel()
	})
	rng := fmt.Sprintf("bytes=%d-%d", r.off, r.end-1)
	in := &s3.GetObjectInput{Bucket: &r.bucket, Key: &r.key, Range: &rng}
	if r.etag != "" {
		in.IfMatch = &r.etag
	}
	out, err := r.c.down.GetObject(ctx, in)
	timer.Stop()
	if err != nil {
		cancel()
		switch {
		case rangeNotSatisfiable(err):
			r.end = r.off // the object ends here
			return io.EOF
		case r.ctx.Err() != nil:
			return fmt.Errorf("read %s/%s: %w", r.bucket, r.key, context.Cause(r.ctx))
		case r.stalled.Load():
			return fmt.Errorf("%w: no answer for %v", errResume, r.c.opt.RangeTimeout)
		}
		return mapErr("read", r.bucket, r.key, err)
	}
	start, total, ok := parseContentRange(aws.ToString(out.ContentRange))
	if !ok || start != r.off {
		out.Body.Close()
		cancel()
		return fmt.Errorf("read %s/%s: asked %s, got Content-Range %q", r.bucket, r.key, rng, aws.ToString(out.ContentRange))
	}
	if r.etag == "" {
		r.etag = aws.ToString(out.ETag) // resumes must read the same object
	}
	r.end = min(r.end, total)
	r.body, r.cancel, r.timer, r.since = out.Body, cancel, timer, 0
	return nil
}

func (r *RangeReader) closeBody() {
	if r.body != nil {
		r.timer.Stop()
		r.cancel()
		r.body.Close()
		r.body = nil
	}
}

func (r *RangeReader) fail(err error) error {
	r.closeBody()
	r.err = err
	return err
}

// Close ends the GET; the rest of the range is not read.
func (r *RangeReader) Close() error {
	r.closeBody()
	if r.err == nil {
		r.err = errors.New("cdn: read after close")
	}
	return nil
}

// Stream is Client.Stream for the pinned object.
func (p Pinned) Stream(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	return p.c.Stream(ctx, p.folder, p.name, p.etag, off, n)
}
