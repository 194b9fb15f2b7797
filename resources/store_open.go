package resources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/azaion/loader/resources/cache"
	"github.com/azaion/loader/resources/cdn"
)

// Open opens the current version of a resource (flow F2, lazily): the small
// part from the Resource API, the big part's size and ETag from the CDN. No
// big-part bytes are read but the last two blocks, once per version, for the
// plaintext size; the rest comes from the cache or the CDN as it is read.
//
// When the Resource API cannot be reached, a version whose small part this
// process holds (heldSmalls) still opens, if the CDN holds that version or
// cannot be reached either; when only the CDN cannot be reached, a version
// recorded in the local cache opens.
func (s *Store) Open(ctx context.Context, folder, name string) (*Resource, error) {
	if err := CheckNames(folder, name); err != nil {
		return nil, err
	}
	sess, err := s.current()
	if err != nil {
		return nil, err
	}
	if sess.cdn.Config().Bucket == "" && !ValidBucket(folder) {
		// PROTOCOL §4: refused before the CDN, or anything, is asked.
		return nil, fmt.Errorf("%w: folder %q is not a bucket name (3-63 of a-z, 0-9, '.', '-')", ErrBadName, clip(folder))
	}
	began := time.Now()
	meta, cached := s.cache.Lookup(folder, name)
	heldV, held := s.held.version(folder, name)
	// The small part and the CDN's answer are asked for at once: the first
	// byte of a cold open waits for the slower of the two, not both. A
	// resource not opened before in this process is asked for with a GET of
	// its last two blocks, which gives the size and ETag a HEAD would and
	// the plaintext size too; later opens revalidate with a HEAD.
	type stat struct {
		obj  cdn.Object
		tail []byte
		err  error
		took time.Duration
	}
	statCtx, cancelStat := context.WithCancel(ctx)
	if dl, ok := ctx.Deadline(); ok && (cached || held) {
		// Leave half the time to fall back on the cached version when the
		// CDN does not answer.
		statCtx, cancelStat = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
	}
	defer cancelStat()
	stated := make(chan stat, 1)
	first := !s.openedBefore(folder, name)
	go func() {
		if first {
			tail := make([]byte, 2*BlockSize)
			obj, n, err := sess.cdn.Tail(statCtx, folder, name, tail)
			if err == nil || statCtx.Err() != nil {
				stated <- stat{obj, tail[:n], err, time.Since(began)}
				return
			}
			// An empty big part has no tail, say; the HEAD tells.
		}
		obj, err := sess.cdn.Stat(statCtx, folder, name)
		stated <- stat{obj: obj, err: err, took: time.Since(began)}
	}()
	// The first chunk too, unless it is on disk: most readers start at
	// offset 0 (a header), and their first read then waits for no GET of
	// its own. Unpinned, since the ETag is not known yet; kept only when
	// it matches the tail's.
	var head *headFetch
	if first && !(cached && meta.Present > 0 && s.cache.Has(folder, name, 0)) {
		head = startHead(ctx, s.log, sess.cdn, folder, name, s.cache.ChunkSize())
		defer func() { head.drop() }()
	}
	small, err := s.get(ctx, sess, folder, name+".small")
	gotSmall := time.Since(began)
	fromAPI := err == nil
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.held.drop(folder, name)
		}
		if !errors.Is(err, ErrUpstream) || !held {
			return nil, fmt.Errorf("open %s/%s: %w", folder, name, err)
		}
		// The held copy leaves the locked arena only now that it is needed.
		var v cache.Version
		if small, v, held = s.held.get(folder, name); !held || v != heldV {
			return nil, fmt.Errorf("open %s/%s: %w", folder, name, err)
		}
		s.log.Warn("Resource API unreachable, opening the version held in memory", "folder", folder, "name", name, "err", err)
	}
	v := cache.Version{SmallHash: cache.HashSmall(small)}
	// known is the version small was last checked against, for when the
	// CDN cannot say: the one held, or the one the cache records (whose
	// sidecar the cache checks under small's key).
	known, knownOK := heldV, held && heldV.SmallHash == v.SmallHash
	if !knownOK && fromAPI && cached && meta.Version.SmallHash == v.SmallHash {
		known, knownOK = meta.Version, true
	}
	var st stat
	select {
	case st = <-stated:
	case <-ctx.Done():
		st.err = ctx.Err()
	}
	obj, err := st.obj, st.err
	if err == nil {
		// PROTOCOL §4: merge only the small part the big part was published with.
		if small, obj, err = s.bind(ctx, sess, folder, name, small, obj); err != nil {
			return nil, fmt.Errorf("open %s/%s: %w", folder, name, err)
		}
		v.SmallHash = cache.HashSmall(small)
	}
	switch {
	case err == nil && !fromAPI && (obj.ETag != heldV.ETag || obj.Size != heldV.BigLen):
		// The CDN holds another version than the one whose small part is
		// held: never pair them.
		return nil, fmt.Errorf("open %s/%s: %w: the Resource API is unreachable and the CDN holds another version than the one known", folder, name, ErrUpstream)
	case err == nil:
		v.BigLen, v.ETag = obj.Size, obj.ETag
	case knownOK && !errors.Is(err, context.Canceled):
		s.log.Warn("CDN stat failed, opening the version known", "folder", folder, "name", name, "err", err)
		v = known
		head.drop() // from a CDN that failed, and of no known version
		head = nil
	default:
		return nil, fmt.Errorf("open %s/%s: %w", folder, name, cdnError(err))
	}
	origin := cdnOrigin{sess.cdn.Pin(folder, name, v.ETag)}
	part, err := s.cache.Part(folder, name, v, s.cacheKey(small), origin)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: cache: %w", folder, name, err)
	}
	version := hashHex([]byte(v.SmallHash + "\x00" + v.ETag + "\x00" + strconv.FormatInt(v.BigLen, 10)))[:32]
	var tail BigPart
	if int64(len(st.tail)) == 2*BlockSize && st.obj.ETag == v.ETag && st.obj.Size == v.BigLen {
		tail = &tailPart{BigPart: origin, tail: st.tail, at: v.BigLen - 2*BlockSize}
	}
	size, err := s.size(ctx, version, small, origin, part, tail, v.BigLen)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", folder, name, err)
	}
	head.seed(part, v)
	head = nil // the seeding owns it now
	part.SetPlainSize(size)
	if st.err == nil {
		// Checked against the CDN's version: held for opens while the
		// Resource API is out of reach.
		s.held.put(folder, name, small, v)
	}
	s.markOpened(folder, name)
	// Where a cold open's time goes (BENCHMARKS.md, P2).
	s.log.Debug("opened", "folder", folder, "name", name, "first", first,
		"small_ms", ms(gotSmall), "cdn_ms", ms(st.took), "took_ms", ms(time.Since(began)))
	r, err := NewReaderSize(s.key, small, part, v.BigLen, size)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", folder, name, err)
	}
	return &Resource{Folder: folder, Name: name, Version: version, Reader: r}, nil
}

// size finds a version's plaintext size from the last two ciphertext
// blocks, from tail when not nil (the open's GET of them), else read
// straight from the CDN (a 32-byte range) or, when that fails, through the
// cache, and remembers it.
func (s *Store) size(ctx context.Context, version string, small []byte, origin, part, tail BigPart, bigLen int64) (int64, error) {
	s.mu.RLock()
	size, ok := s.sizes[version]
	s.mu.RUnlock()
	if ok {
		return size, nil
	}
	if tail == nil {
		tail = origin
	}
	r, err := NewReader(ctx, s.key, small, tail, bigLen)
	if err != nil && !errors.Is(err, ErrDecrypt) && !errors.Is(err, context.Canceled) {
		r, err = NewReader(ctx, s.key, small, part, bigLen)
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.sizes[version] = r.Size()
	s.mu.Unlock()
	return r.Size(), nil
}

// openedBefore reports whether folder/name was opened in this process, so
// that its version is revalidated with a HEAD rather than a GET of its tail.
func (s *Store) openedBefore(folder, name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opened[folder+"/"+name]
}

func (s *Store) markOpened(folder, name string) {
	s.mu.Lock()
	s.opened[folder+"/"+name] = true
	s.mu.Unlock()
}

// tailPart is the big part with its last bytes at hand, from the open's
// GET of them; other reads go to the BigPart.
type tailPart struct {
	BigPart
	tail []byte
	at   int64 // where tail starts in the big part
}

func (t *tailPart) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= t.at && off+int64(len(p)) <= t.at+int64(len(t.tail)) {
		return copy(p, t.tail[off-t.at:]), nil
	}
	return t.BigPart.ReadAt(ctx, p, off)
}

// cdnOrigin reads one version of a big part from the CDN, pinned by its ETag
// so that a replaced object is never spliced into an open file, with the
// Store's errors.
type cdnOrigin struct{ pinned cdn.Pinned }

func (o cdnOrigin) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	n, err := o.pinned.ReadAt(ctx, p, off)
	if err != nil {
		return n, cdnError(err)
	}
	return n, nil
}

// headFetch is an open's GET of the big part's first chunk, made beside
// the small part and the tail. Its body is read only once the open knows
// the version, and then into the cache as it arrives, so that a first read
// at offset 0 waits for its own bytes, not the whole chunk.
type headFetch struct {
	log    *slog.Logger
	began  time.Time
	cancel context.CancelFunc
	done   chan headResult // buffered: the GET never waits for a reader
}

type headResult struct {
	obj  cdn.Object
	body io.ReadCloser
	err  error
}

// startHead starts the GET of folder/name's first chunk of size bytes. It
// is detached from ctx, since its chunk may be handed to the cache after
// the open returns, and bounded by the CDN client's RangeTimeout.
func startHead(ctx context.Context, log *slog.Logger, c *cdn.Client, folder, name string, size int64) *headFetch {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &headFetch{log: log, began: time.Now(), cancel: cancel, done: make(chan headResult, 1)}
	go func() {
		obj, body, err := c.HeadStream(hctx, folder, name, size)
		h.done <- headResult{obj: obj, body: body, err: err}
	}()
	return h
}

// drop gives up the GET, for an open that failed: the goroutine ends as
// soon as its request does, and its body is closed.
func (h *headFetch) drop() {
	if h != nil {
		h.cancel()
		go func() {
			if r := <-h.done; r.body != nil {
				r.body.Close()
			}
		}()
	}
}

// seed hands the first chunk's body to part when it comes from version v,
// at once or, while the GET is still on its way, through a flight that the
// first read waits for instead of a GET of its own. A body of another
// version is closed unread, and the cache fetches the chunk pinned.
func (h *headFetch) seed(part *cache.Part, v cache.Version) {
	if h == nil {
		return
	}
	deliver := part.SeedStream(0)
	if deliver == nil {
		h.drop()
		return
	}
	match := func(r headResult) io.ReadCloser {
		ok := r.err == nil && r.obj.ETag == v.ETag && r.obj.Size == v.BigLen
		h.log.Debug("first chunk's GET answered at open", "kept", ok, "err", r.err, "took_ms", ms(time.Since(h.began)))
		if !ok {
			if r.body != nil {
				r.body.Close()
			}
			h.cancel()
			return nil
		}
		return &cancelBody{r.body, h.cancel}
	}
	select {
	case r := <-h.done:
		deliver(match(r))
	default:
		go func() { deliver(match(<-h.done)) }()
	}
}

// cancelBody is a body whose Close also ends the context it was read on.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// ms is d in milliseconds, for debug logs.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
