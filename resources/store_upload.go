package resources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/azaion/loader/resources/cache"
)

// headLen is how much ciphertext an upload reads before it knows the small
// part's length: past 10240 bytes it is always MaxSmallLen.
const headLen = 10240

// Upload encrypts r's bytes with the resource key and stores them (flow F3):
// the big part streams to the CDN and into the local cache, then the small
// part goes to the Resource API. Only the small part is held in memory, and
// no plaintext is written anywhere. It returns the plaintext size.
func (s *Store) Upload(ctx context.Context, folder, name string, r io.Reader) (int64, error) {
	if err := CheckNames(folder, name); err != nil {
		return 0, err
	}
	sess, err := s.current()
	if err != nil {
		return 0, err
	}
	counted := &countReader{r: r}
	enc, err := EncryptReader(s.key, counted)
	if err != nil {
		return 0, err
	}
	head := make([]byte, headLen+1)
	// readFull, not io.ReadFull: a body that breaks off (io.ErrUnexpectedEOF
	// from r) must not pass for the end of a short resource.
	got, err := readFull(enc, head)
	var n int
	switch {
	case err == nil:
		// More than headLen bytes of ciphertext: the small part is full size.
		n = MaxSmallLen
	case err == io.EOF:
		// The whole ciphertext fits in head.
		head = head[:got]
		n = int(SmallLen(int64(got)))
	default:
		return 0, fmt.Errorf("upload %s/%s: read: %w", folder, name, err)
	}
	small := bytes.Clone(head[:n])
	big := io.MultiReader(bytes.NewReader(head[n:]), enc)

	w, cerr := s.cache.Writer(folder, name, s.cacheKey(small))
	if cerr != nil {
		s.log.Warn("cache: cannot keep the uploaded big part", "folder", folder, "name", name, "err", cerr)
		w = nil
	}
	tee := &cacheTee{w: w}
	obj, err := sess.cdn.Put(ctx, folder, name, io.TeeReader(big, tee))
	if err != nil {
		tee.abort()
		if errors.Is(err, ErrDecrypt) || errors.Is(err, ErrTooLarge) || errors.Is(err, context.Canceled) {
			return 0, fmt.Errorf("upload %s/%s: %w", folder, name, err)
		}
		return 0, fmt.Errorf("upload %s/%s: CDN: %w", folder, name, cdnError(err))
	}
	v := cache.Version{SmallHash: cache.HashSmall(small), BigLen: obj.Size, ETag: obj.ETag}
	tee.commit(s, folder, name, v, small)
	if err := s.api.Upload(ctx, folder, name+".small", small); err != nil {
		return 0, fmt.Errorf("upload %s/%s: small part: %w", folder, name, apiError(err))
	}
	s.mu.Lock()
	watchers := s.watchers
	s.mu.Unlock()
	for _, fn := range watchers {
		fn(folder, name)
	}
	s.log.Info("uploaded", "folder", folder, "name", name, "bytes", counted.n, "small", len(small), "big", obj.Size)
	return counted.n, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// cacheTee copies the big part into the cache while it streams to the CDN.
// A cache that fails (disk full) is dropped; the upload goes on.
type cacheTee struct {
	w   *cache.Writer
	err error
}

func (t *cacheTee) Write(p []byte) (int, error) {
	if t.w != nil && t.err == nil {
		if _, err := t.w.Write(p); err != nil {
			t.err = err
			t.w.Abort()
		}
	}
	return len(p), nil
}

func (t *cacheTee) abort() {
	if t.w != nil && t.err == nil {
		t.w.Abort()
	}
}

func (t *cacheTee) commit(s *Store, folder, name string, v cache.Version, small []byte) {
	if t.w == nil {
		return
	}
	if t.err == nil {
		t.err = t.w.Commit(v)
	}
	if t.err != nil {
		s.log.Warn("cache: cannot keep the uploaded big part", "folder", folder, "name", name, "err", t.err)
	}
}
