package resources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/azaion/loader/resources/cache"
	"github.com/azaion/loader/resources/cdn"
)

// headLen is how much ciphertext an upload reads before it knows the small
// part's length: past 10240 bytes it is always MaxSmallLen.
const headLen = 10240

// Upload encrypts r's bytes with the resource key and stores them (flow F3)
// in the order of PROTOCOL §4: the big part streams to a staging key on the
// CDN (and into the local cache), bound to the small part by its SHA-256 in
// the object's metadata; then the small part goes to the Resource API; then
// a server-side copy publishes the big part, and the staged object is
// deleted. A failure or refusal at any step deletes the staged object and
// leaves the published version as it was: a small part already replaced
// when the copy fails is put back. Only the small part is held in memory,
// and no plaintext is written anywhere. It returns the plaintext size.
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
	smallSum := hashHex(small)
	big := io.MultiReader(bytes.NewReader(head[n:]), enc)

	w, cerr := s.cache.Writer(folder, name, s.cacheKey(small))
	if cerr != nil {
		s.log.Warn("cache: cannot keep the uploaded big part", "folder", folder, "name", name, "err", cerr)
		w = nil
	}
	tee := &cacheTee{w: w}
	staged, err := sess.cdn.Stage(ctx, folder, name, io.TeeReader(big, tee), map[string]string{cdn.MetaSmallSHA256: smallSum})
	if err != nil {
		tee.abort()
		if errors.Is(err, ErrDecrypt) || errors.Is(err, ErrTooLarge) || errors.Is(err, context.Canceled) {
			return 0, fmt.Errorf("upload %s/%s: %w", folder, name, err)
		}
		return 0, fmt.Errorf("upload %s/%s: CDN: %w", folder, name, cdnError(err))
	}
	defer func() {
		if derr := staged.Discard(ctx); derr != nil {
			s.log.Warn("cdn: cannot delete the staged big part", "folder", folder, "name", name, "key", staged.Key(), "err", derr)
		}
	}()
	obj, err := s.publish(ctx, sess, folder, name, small, staged)
	if err != nil {
		tee.abort()
		return 0, err
	}
	v := cache.Version{SmallHash: smallSum, BigLen: obj.Size, ETag: obj.ETag}
	tee.commit(s, folder, name, v)
	s.cache.SetPlainSize(folder, name, v, counted.n) // listed with its size before a login
	s.mu.Lock()
	watchers := s.watchers
	s.mu.Unlock()
	for _, fn := range watchers {
		fn(folder, name)
	}
	s.log.Info("uploaded", "folder", folder, "name", name, "bytes", counted.n, "small", len(small), "big", obj.Size)
	return counted.n, nil
}

// publish stores the small part on the Resource API and then copies the
// staged big part into place. The small part it replaces is fetched first,
// and put back when the small part may have been stored but the big part
// was not published: a reader then finds the old version whole again, not
// a small part that its big part's metadata refuses.
func (s *Store) publish(ctx context.Context, sess *session, folder, name string, small []byte, staged *cdn.Staged) (cdn.Object, error) {
	old, err := s.get(ctx, sess, folder, name+".small")
	switch {
	case errors.Is(err, ErrNotFound):
		old = nil // a new resource: there is nothing to put back
	case err != nil:
		return cdn.Object{}, fmt.Errorf("upload %s/%s: small part: %w", folder, name, err)
	}
	if err := sess.api.Upload(ctx, folder, name+".small", small); err != nil {
		err = apiError(err)
		if errors.Is(err, ErrUpstream) {
			// No answer, or a 5xx: it may have been stored all the same.
			s.restoreSmall(ctx, sess, folder, name, old)
		}
		return cdn.Object{}, fmt.Errorf("upload %s/%s: small part: %w", folder, name, err)
	}
	obj, err := staged.Publish(ctx)
	if err != nil {
		s.restoreSmall(ctx, sess, folder, name, old)
		// Even a "not found" (the staged object gone) is the CDN failing
		// this upload, not a resource that does not exist.
		return cdn.Object{}, fmt.Errorf("upload %s/%s: publish: %w: %w", folder, name, ErrUpstream, err)
	}
	return obj, nil
}

// restoreSmall puts the small part old back on the Resource API after a
// failed publish, on a context of its own (ctx may be what failed; the
// API client bounds the call). A new resource's small part cannot be
// taken back: without its big part it opens as not found.
func (s *Store) restoreSmall(ctx context.Context, sess *session, folder, name string, old []byte) {
	if old == nil {
		return
	}
	if err := sess.api.Upload(context.WithoutCancel(ctx), folder, name+".small", old); err != nil {
		s.log.Error("upload failed and the old small part could not be put back: opens fail until the next upload",
			"folder", folder, "name", name, "err", apiError(err))
	}
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

func (t *cacheTee) commit(s *Store, folder, name string, v cache.Version) {
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
