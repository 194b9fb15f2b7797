package resources

import (
	"context"
	"errors"
	"io"
)

// Stream reads [off, off+n) of the big part as one ranged GET pinned to the
// ETag, read as it arrives: the cache's fetch of a long run of chunks for a
// sequential reader (a cache.Streamer). Its errors are the Store's, as
// ReadAt's are.
func (o cdnOrigin) Stream(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	r, err := o.pinned.Stream(ctx, off, n)
	if err != nil {
		return nil, cdnError(err)
	}
	return originStream{r}, nil
}

// originStream maps a stream's errors as cdnOrigin.ReadAt does.
type originStream struct{ io.ReadCloser }

func (s originStream) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = cdnError(err)
	}
	return n, err
}
