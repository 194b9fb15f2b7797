package resources

import (
	"context"
	"sync"
	"time"

	"github.com/azaion/loader/resources/bufpool"
	"github.com/azaion/loader/resources/cache"
)

// Read-ahead of a Reader: sequential reads (a FUSE file read by dd or a
// model loader, a /load stream) are served from plaintext chunks decrypted
// ahead of them, several at once, so that the next read finds its bytes
// ready: the big part's chunks are fetched (ranged GETs when cold) or read
// from the cache in parallel, and decrypted on every core while the reader
// copies the previous chunk. The window of chunks kept ahead starts at one
// and doubles each time the reader enters a new chunk, up to aheadMax, and
// falls back to nothing on a jump; reads that do not look sequential
// decrypt just their blocks, as without read-ahead.
const (
	// aheadChunk is the plaintext a chunk holds, about one cache chunk.
	aheadChunk = cache.DefaultChunkSize
	// aheadMax bounds the window: with the chunk being read and those
	// kept behind, a stream holds at most about (aheadMax+aheadKeep+2)
	// chunks of plaintext.
	aheadMax = 4
	// aheadKeep is how many chunks behind the reader stay, for the
	// kernel's read-ahead requests that arrive out of order.
	aheadKeep = 1
	// aheadSlack is how far from the expected offset a read of a started
	// stream still counts as sequential: parallel requests of one stream
	// (the kernel's read-ahead, /load's reads ahead) arrive out of order.
	aheadSlack = 4 * aheadChunk
	// aheadIdle is how long a stream's chunks outlive its last read.
	aheadIdle = 2 * time.Second
	// aheadTimeout bounds one chunk's decryption ahead of its reader; the
	// fetches it makes are bounded by the cache and the CDN client too.
	aheadTimeout = 2 * time.Minute
	// aheadMinSize: smaller resources are read without read-ahead.
	aheadMinSize = 4 * aheadChunk
	// aheadFetch is the ahead a reader passes to Warm once its window is
	// full (a stream that has read several chunks in a row): it marks the
	// reader as sequential, and the cache's planner then fetches segments
	// of several chunks ahead of it, several GETs at once.
	aheadFetch = 16 * aheadChunk
)

// warmer is a BigPart that fetches a range ahead of the reads that need it,
// in few large requests (a cache.Part).
type warmer interface {
	Warm(ctx context.Context, off, n, ahead int64)
}

// readAhead holds the chunks of one Reader. Chunk k is the plaintext
// [start(k), start(k+1)), cut so that its ciphertext ends on the big part's
// chunk boundary (k+1)·aheadChunk: decrypting it reads one cache chunk and
// the block before it, which the previous chunk hands over (its tail) as
// soon as it has read its ciphertext, so that no cache chunk is read twice
// and the chunks decrypt in parallel. (The boundary falls on a block when
// the small part is a whole number of blocks, as its 3072 bytes are for
// every resource large enough for read-ahead; otherwise the tails are not
// kept and each chunk reads the bytes before it from the big part.)
type readAhead struct {
	r      *Reader
	chunks int64 // number of chunks

	mu     sync.Mutex
	live   map[int64]*pchunk
	next   int64 // where a sequential read would start
	window int64 // chunks kept ahead of the reader
	lastK  int64 // the chunk the last read started in
	idle   *time.Timer

	// budget is shared by every reader of the Store: chunks ahead of
	// what a read needs are started only while it has room (nil: no
	// limit). charged is what this reader's chunks hold of it; joined
	// whether it counts among the budget's holders.
	budget  *bufpool.Budget
	charged int64
	joined  bool
}

// budgeted is a BigPart that tells the read-ahead budget its readers share
// (a cache.Part: the Store's, through its Cache).
type budgeted interface {
	ReadAheadBudget() *bufpool.Budget
}

// pchunk is one chunk, being decrypted or done.
type pchunk struct {
	done chan struct{}
	buf  *[]byte // the pooled buffer that holds data
	data []byte  // the plaintext, once done without err
	// charge is what the chunk holds of the budget, returned with buf.
	charge int64
	err    error
	refs   int // readers copying from buf, plus one while in live
	// tail is the end of this chunk's ciphertext that the next chunk
	// decrypts its first block with; nil when it could not be kept. It is
	// set before tailReady closes, as soon as the ciphertext is read.
	tail      []byte
	tailReady chan struct{}
	cancel    context.CancelFunc // stops the decryption, and the fetches it waits for
}

// chunkBufs keeps the plaintext buffers of the chunks, each large enough
// for chunk 0, which holds the small part's plaintext too.
var chunkBufs = bufpool.New(aheadChunk+MaxSmallLen+2*BlockSize, 12)

func newReadAhead(r *Reader) *readAhead {
	if r.size < aheadMinSize {
		return nil
	}
	a := &readAhead{r: r, live: map[int64]*pchunk{}, lastK: -1}
	if b, ok := r.big.(budgeted); ok {
		a.budget = b.ReadAheadBudget()
	}
	a.chunks = 1
	for a.rawStart(a.chunks) < r.size {
		a.chunks++
	}
	return a
}

// rawStart is where chunk k's plaintext starts: plaintext block i decrypts
// ciphertext block i+1, so chunk k (k ≥ 1) starts at the whole block that
// ends at or before the big part's offset k·aheadChunk, less one block.
func (a *readAhead) rawStart(k int64) int64 {
	if k <= 0 {
		return 0
	}
	c := int64(len(a.r.small)) + k*aheadChunk
	return (c/BlockSize - 1) * BlockSize
}

// start is rawStart within the plaintext: the end for k ≥ chunks.
func (a *readAhead) start(k int64) int64 {
	if k >= a.chunks {
		return a.r.size
	}
	return a.rawStart(k)
}

// chunkOf is the chunk that holds plaintext offset off.
func (a *readAhead) chunkOf(off int64) int64 {
	// start(k) ≤ small + k·chunk, so off's chunk is at or after this guess.
	k := max((off-int64(len(a.r.small)))/aheadChunk, 0)
	for k+1 < a.chunks && a.start(k+1) <= off {
		k++
	}
	return k
}

// span serves a read of n bytes at off (0 ≤ off < size): from the chunks,
// as slices of their buffers held until the Span is released, or, when the
// read does not look sequential and its chunks are not at hand, decrypted
// straight into the buffer that into gives (Reader.readInto).
func (a *readAhead) span(ctx context.Context, n int, off int64, into func() ([]byte, func())) (Span, error) {
	end := min(off+int64(n), a.r.size)
	need, k0, ok := a.acquire(ctx, off, end, false)
	if !ok {
		return a.r.readInto(ctx, n, off, into)
	}
	if n <= directMax && !allDone(need) {
		// A small read (a header) does not wait for whole chunks: it
		// decrypts its own blocks as soon as the cache has them in, while
		// its chunks go on being fetched and decrypted for the reads after.
		a.release(need)
		return a.r.readInto(ctx, n, off, into)
	}
	for _, c := range need {
		select {
		case <-ctx.Done():
			a.abandon(need)
			return Span{}, ctx.Err()
		case <-c.done:
		}
		if c.err != nil {
			a.release(need)
			return Span{}, c.err
		}
	}
	return a.slices(need, k0, off, end), nil
}

// ready is span for a read whose chunks are decrypted already: ok is false,
// and nothing changes, when serving it would wait.
func (a *readAhead) ready(ctx context.Context, n int, off int64) (Span, bool) {
	end := min(off+int64(n), a.r.size)
	need, k0, ok := a.acquire(ctx, off, end, true)
	if !ok {
		return Span{}, false
	}
	return a.slices(need, k0, off, end), true
}

// slices is the Span of [off, end) in chunks need, from chunk k0 on, all
// done; releasing it releases them.
func (a *readAhead) slices(need []*pchunk, k0, off, end int64) Span {
	bs := make([][]byte, len(need))
	for i, c := range need {
		cs := a.start(k0 + int64(i))
		lo, hi := max(off, cs)-cs, min(end, a.start(k0+int64(i)+1))-cs
		bs[i] = c.data[lo:hi]
	}
	return Span{Bytes: bs, release: func() { a.release(need) }}
}

// acquire takes a reference on each chunk of [off, end) for a read,
// starting those a sequential read needs and the window ahead of it; ok is
// false when the read does not look sequential and its chunks are not at
// hand. With onlyDone, it changes nothing and reports false unless every
// chunk is decrypted already and the read is sequential.
func (a *readAhead) acquire(ctx context.Context, off, end int64, onlyDone bool) (need []*pchunk, k0 int64, ok bool) {
	k0, k1 := a.chunkOf(off), a.chunkOf(end-1)

	a.mu.Lock()
	defer a.mu.Unlock()
	// A stream starts with a read where the last one ended (or at 0), and
	// goes on, once started, with reads near where the last one ended.
	seq := off == a.next || a.window > 0 && off >= a.next-aheadSlack && off <= a.next+aheadSlack
	if onlyDone {
		if !seq {
			return nil, 0, false
		}
		for k := k0; k <= k1; k++ {
			if c := a.live[k]; c == nil || !isDone(c) || c.err != nil {
				return nil, 0, false
			}
		}
	}
	switch {
	case !seq:
		a.window = 0
	case a.lastK < 0:
		// A first read fetches only what it needs, for the first byte's
		// sake (an open followed by a small read of a header).
	case k0 != a.lastK:
		a.window = min(max(2*a.window, 1), aheadMax)
	}
	a.lastK, a.next = k0, end
	if seq {
		a.warmLocked(ctx, k0, min(k1+a.window, a.chunks-1))
	}
	need = make([]*pchunk, 0, k1-k0+1)
	for k := k0; k <= k1; k++ {
		c := a.live[k]
		if c == nil && seq {
			c = a.startLocked(ctx, k)
		}
		if c == nil {
			break
		}
		c.refs++
		need = append(need, c)
	}
	if seq {
		// The window ahead: each chunk only while the budget has room
		// and this reader is within its share, so that under pressure
		// the windows shrink, down to the chunks reads need.
		for k := k1 + 1; k <= min(k1+a.window, a.chunks-1); k++ {
			if a.live[k] != nil {
				continue
			}
			if !a.joined && a.budget != nil {
				a.budget.Join()
				a.joined = true
			}
			if !a.budget.TryTake(aheadChunk, a.charged) {
				break
			}
			a.charged += aheadChunk
			a.startLocked(ctx, k).charge = aheadChunk
		}
	}
	a.evictLocked(k0, k1)
	a.touchLocked()
	if len(need) < int(k1-k0+1) {
		for _, c := range need {
			a.unrefLocked(c)
		}
		return nil, 0, false
	}
	return need, k0, true
}

// directMax is the largest read that span serves straight from the big
// part while its chunks are still on their way.
const directMax = 64 << 10

func allDone(cs []*pchunk) bool {
	for _, c := range cs {
		if !isDone(c) {
			return false
		}
	}
	return true
}

func isDone(c *pchunk) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// warmLocked asks the big part for the cache chunks of chunks k0..k1 that
// are not live yet, before their decryption asks for them one by one, so
// that the missing ones are fetched together.
func (a *readAhead) warmLocked(ctx context.Context, k0, k1 int64) {
	w, ok := a.r.big.(warmer)
	if !ok {
		return
	}
	for k0 <= k1 && a.live[k0] != nil {
		k0++
	}
	if k0 > k1 {
		return
	}
	var ahead int64
	if a.window >= aheadMax {
		ahead = aheadFetch
	}
	w.Warm(ctx, k0*aheadChunk, (k1-k0+1)*aheadChunk, ahead)
}

// abandon is release for a reader whose context ended (a killed process,
// a timeout): its stream is over, so the chunks no other reader waits for
// are dropped and their fetches cancelled.
func (a *readAhead) abandon(cs []*pchunk) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range cs {
		a.unrefLocked(c)
	}
	for k, c := range a.live {
		a.dropLocked(k, c)
	}
	a.window = 0
	a.leaveLocked()
}

// leaveLocked counts the reader out of the budget's holders: it holds
// nothing ahead any more (its chunks return their charge as they go).
func (a *readAhead) leaveLocked() {
	if a.joined {
		a.budget.Leave()
		a.joined = false
	}
}

// freeLocked returns chunk c's buffer to the pool and its charge to the
// budget.
func (a *readAhead) freeLocked(c *pchunk) {
	if c.buf != nil {
		chunkBufs.Put(c.buf)
		c.buf, c.data = nil, nil
	}
	if c.charge > 0 {
		a.budget.Give(c.charge)
		a.charged -= c.charge
		c.charge = 0
	}
}

// startLocked starts decrypting chunk k, ahead of the reader that needs it.
func (a *readAhead) startLocked(ctx context.Context, k int64) *pchunk {
	c := &pchunk{done: make(chan struct{}), tailReady: make(chan struct{}), refs: 1}
	a.live[k] = c
	// The chunk outlives the read that starts it: it serves the reads
	// after, and only its dropping cancels it.
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go a.fill(fctx, k, c, a.live[k-1])
	return c
}

// fill decrypts chunk k into c. prev, when not nil, is chunk k-1, whose
// tail is the ciphertext just before chunk k's cache chunk.
func (a *readAhead) fill(ctx context.Context, k int64, c, prev *pchunk) {
	ctx, cancel := context.WithTimeout(ctx, aheadTimeout)
	defer cancel()
	defer c.cancel()
	lo, hi := a.start(k), a.start(k+1)
	// The ciphertext is read into the chunk's own buffer and decrypted
	// there: no second buffer per chunk in flight.
	bp := chunkBufs.Get(int(inPlaceLen(lo, hi)))
	small := int64(len(a.r.small))
	src := &spliced{big: a.r.big, headEnd: k * aheadChunk, prev: prev}
	if k+1 < a.chunks {
		// Keep the bytes chunk k+1 needs from before its cache chunk.
		src.keepAt, src.keepEnd = a.start(k+1)-small, (k+1)*aheadChunk
	}
	src.keep = func(b []byte) { c.tail = b; close(c.tailReady) }
	data, err := a.r.readInPlace(ctx, src, *bp, lo, hi)
	if src.keep != nil {
		close(c.tailReady) // nothing kept
	}
	a.mu.Lock()
	if err != nil {
		c.err = err
		c.buf = bp
		a.freeLocked(c)
		if a.live[k] == c { // a failed chunk is tried again by the next read
			delete(a.live, k)
			c.refs--
		}
	} else {
		c.buf, c.data = bp, data
	}
	a.mu.Unlock()
	close(c.done)
}

// release ends the readers' use of chunks.
func (a *readAhead) release(cs []*pchunk) {
	a.mu.Lock()
	for _, c := range cs {
		a.unrefLocked(c)
	}
	a.mu.Unlock()
}

func (a *readAhead) unrefLocked(c *pchunk) {
	c.refs--
	if c.refs == 0 {
		a.freeLocked(c)
	}
}

// evictLocked drops the chunks outside the reader's window.
func (a *readAhead) evictLocked(k0, k1 int64) {
	for k, c := range a.live {
		if k < k0-aheadKeep || k > k1+max(a.window, 1) {
			a.dropLocked(k, c)
		}
	}
}

// dropLocked takes chunk k out of live; a chunk still being decrypted
// is cancelled when no reader waits for it, and returns its buffer when
// its last reader is done.
func (a *readAhead) dropLocked(k int64, c *pchunk) {
	delete(a.live, k)
	select {
	case <-c.done:
		a.unrefLocked(c)
	default:
		if c.refs == 1 {
			c.cancel()
		}
		// fill has not finished: it keeps its reference until it has.
		go func() {
			<-c.done
			a.mu.Lock()
			a.unrefLocked(c)
			a.mu.Unlock()
		}()
	}
}

// touchLocked (re)arms the idle timer that frees every chunk.
func (a *readAhead) touchLocked() {
	if a.idle == nil {
		a.idle = time.AfterFunc(aheadIdle, a.drop)
		return
	}
	a.idle.Reset(aheadIdle)
}

// drop frees every chunk: the stream went idle.
func (a *readAhead) drop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range a.live {
		a.dropLocked(k, c)
	}
	a.window, a.next, a.lastK = 0, 0, -1
	a.leaveLocked()
}

// spliced is the big part as one chunk's decryption reads it. It reads the
// chunk's own cache chunk first, hands the next chunk its tail (keep), and
// only then takes the bytes before its cache chunk (below headEnd) from the
// previous chunk's tail, or from the big part when there is none.
type spliced struct {
	big             BigPart
	headEnd         int64
	prev            *pchunk
	keepAt, keepEnd int64 // big-part range to keep for the next chunk
	keep            func([]byte)
}

func (s *spliced) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	h := int(min(max(s.headEnd-off, 0), int64(len(p))))
	m := 0
	var err error
	if h < len(p) {
		m, err = s.big.ReadAt(ctx, p[h:], off+int64(h))
	}
	if got := off + int64(h+m); s.keep != nil && s.keepEnd > s.keepAt && off+int64(h) <= s.keepAt && s.keepEnd <= got {
		s.keep(append([]byte(nil), p[s.keepAt-off:s.keepEnd-off]...))
		s.keep = nil
	}
	if err != nil || h == 0 {
		return h + m, err
	}
	if s.prev != nil {
		select {
		case <-s.prev.tailReady:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if t := s.prev.tail; int64(len(t)) >= s.headEnd-off {
			copy(p[:h], t[int64(len(t))-(s.headEnd-off):])
			return h + m, nil
		}
	}
	n, err := s.big.ReadAt(ctx, p[:h], off)
	if n < h {
		return n, err
	}
	return h + m, err
}
