package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// Origin is where missing chunks come from: the CDN with the big part's
// ETag pinned. ReadAt fills p or returns an error.
type Origin interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
}

// Part is one version of a big part, read through the cache. It is a
// resources.BigPart: safe for parallel calls, an error with every short read.
type Part struct {
	e      *entry
	origin Origin
	plan   planner

	diskBytes, originBytes atomic.Int64
}

// Part returns a reader of folder/name's big part at version v, whose
// chunks on disk are checked with key (NewKey of the version's small part).
// An entry of another version on disk is replaced; Parts already open on
// it go on from their origin.
func (c *Cache) Part(folder, name string, v Version, key Key, origin Origin) (*Part, error) {
	if err := checkNames(folder, name); err != nil {
		return nil, err
	}
	if v.BigLen < 0 {
		return nil, fmt.Errorf("cache: %s/%s: big part of %d bytes", folder, name, v.BigLen)
	}
	if !key.valid() {
		return nil, fmt.Errorf("cache: %s/%s: no chunk key", folder, name)
	}
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur; e != nil && e.v == v && e.onDisk() {
		return &Part{e: e, origin: origin}, nil
	}
	if s.cur != nil {
		s.cur.detach()
	}
	s.cur = c.load(s, folder, name, v, key)
	return &Part{e: s.cur, origin: origin}, nil
}

// Size is the big part's length.
func (p *Part) Size() int64 { return p.e.v.BigLen }

// Present is how many chunks are on disk, of how many.
func (p *Part) Present() (chunks, total int) {
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	if !p.e.disk {
		return 0, int(p.e.chunks)
	}
	return len(p.e.tags), int(p.e.chunks)
}

// SetPlainSize records the resource's plaintext size in the entry's
// sidecar, for listings that have no small part to find it (Meta).
func (p *Part) SetPlainSize(n int64) { p.e.setPlainSize(n) }

// Stats counts the chunk bytes this Part read from disk and fetched from
// its origin (a fetch shared by several readers counts once, for the Part
// that started it).
func (p *Part) Stats() Stats {
	return Stats{DiskBytes: p.diskBytes.Load(), OriginBytes: p.originBytes.Load()}
}

// ReadAt reads the big part at off: each chunk the range covers comes from
// disk when recorded there with a matching tag, else from the origin (one
// fetch per chunk however many readers want it), and is then kept on disk.
// A reader whose ctx ends returns its error at once; the fetch goes on for
// the others, bounded by the cache's FetchTimeout. (Warm fetches runs of
// chunks with one read of the origin each, for sequential readers.)
func (p *Part) ReadAt(ctx context.Context, b []byte, off int64) (int, error) {
	e := p.e
	if off < 0 {
		return 0, fmt.Errorf("cache: read %s/%s at %d: negative offset", e.folder, e.name, off)
	}
	if off >= e.v.BigLen {
		return 0, io.EOF
	}
	e.c.begin(e.key)
	defer e.c.end(e.key)
	end := min(off+int64(len(b)), e.v.BigLen)
	n := 0
	last, ahead := (end-1)/e.chunk, off/e.chunk+1
	var fetching map[int64]*flight
	if lf := p.fetchLead(ctx, off, last); lf != nil {
		fetching = map[int64]*flight{off / e.chunk: lf}
	}
	for i := off / e.chunk; i <= last; i++ {
		// Start the fetches of the next few missing chunks too, so that a
		// large read waits for about one round trip, not one per chunk.
		for ; ahead <= min(last, i+fetchAhead); ahead++ {
			if f := p.fetchRange(ctx, ahead, ahead, 0, false)[ahead]; f != nil {
				if fetching == nil {
					fetching = map[int64]*flight{}
				}
				fetching[ahead] = f
			}
		}
		start := i * e.chunk
		lo, hi := max(off, start)-start, min(end, start+e.chunk)-start
		use := func(data []byte) { copy(b[n:], data[lo:hi]) }
		var err error
		f, ok := fetching[i]
		if ok {
			err = f.wait(ctx, e, hi, use)
		}
		if !ok || errors.Is(err, errReused) {
			var whole []byte // the read wants all of chunk i: read it in place
			if lo == 0 && hi == e.chunkLen(i) {
				whole = b[n : n+int(hi)]
			}
			err = p.chunk(ctx, i, whole, hi, use)
		}
		if err != nil {
			return n, err
		}
		n += int(hi - lo)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// fetchAhead is how many chunks past the one it waits for a read fetches
// at once.
const fetchAhead = 4

// Warm starts fetching the chunks of the big part's [off, off+n) that are
// neither on disk nor being fetched, and returns without waiting: a
// sequential reader calls it for the range it is about to read, so that
// the chunks come in runs of one ranged read each. A reader established as
// sequential says so with ahead > 0, and the Part's planner fetches ahead
// of it: whole segments of runMax chunks, each one ranged GET, as many at
// once as the reader has earned (stream.go); the entry must keep its
// chunks on disk. A short sequential read (a header, the first chunks of
// a stream) gets just the runs it asks for.
func (p *Part) Warm(ctx context.Context, off, n, ahead int64) {
	e := p.e
	if off < 0 || n <= 0 || off >= e.v.BigLen {
		return
	}
	lo, hi := off/e.chunk, (min(off+n, e.v.BigLen)-1)/e.chunk
	if ahead <= 0 {
		p.plan.reset()
		p.fetchRange(ctx, lo, hi, 0, false)
		return
	}
	streams := p.plan.grow(hi/runMax, e.c.opt.Streams)
	p.fetchRange(ctx, lo, hi, int64(streams)*runMax, true)
}

// runMax is how many chunks one ranged read of the origin fetches at most,
// and the size of a sequential reader's segments: an object store takes
// about as long for a request of 32 bytes as for one of a few MiB, so one
// chunk per request would bound cold reads, while several segments of
// 8 MiB (at 1 MiB chunks) in flight fill a far link that caps each
// connection.
const runMax = 8

// flight is one chunk being fetched, alone or with the rest of its run.
type flight struct {
	done chan struct{}
	buf  []byte // the chunk, once done without err
	err  error
	// e is set when buf is the cache's to reuse (a streamed chunk): once
	// the chunk is on disk and out of the entry's flights (reused), and no
	// reader copies from it (users), buf goes back to the cache's free
	// buffers. Both fields are under e.mu.
	e      *entry
	users  int
	reused bool
	// A streamed chunk's buffer while it fills: its first got bytes are
	// in, and moved (made by a waiter, nil when none) is closed when got
	// grows. Readers of those bytes count in users; once one has, the
	// buffer never goes back to the free buffers but through
	// storePublished, and the chunk counts as unstored (peeked). Under
	// e.mu.
	filling []byte
	got     int64
	moved   chan struct{}
	peeked  bool
}

// errReused: the flight's chunk was stored, and its buffer taken back;
// the chunk is on disk.
var errReused = errors.New("cache: chunk stored, its buffer reused")

// wait hands the fetched chunk to use, unless ctx ends first. A reader
// that uses only the chunk's first hi bytes (hi ≤ 0: all of it) has them
// as soon as a stream has them in, before the rest of the chunk: the same
// bytes of the same pinned GET that the whole chunk would hand it, only
// earlier (a chunk read from disk is never handed over before its MAC is
// checked; those come by Part.chunk, not by a flight).
func (f *flight) wait(ctx context.Context, e *entry, hi int64, use func([]byte)) error {
	for hi > 0 && !f.ended() {
		e.mu.Lock()
		if f.filling != nil && f.got >= hi {
			buf := f.filling
			f.users++
			if !f.peeked {
				f.peeked = true
				e.c.unstored.Add(1) // Close waits for the chunk, as for one published
			}
			e.mu.Unlock()
			use(buf)
			e.mu.Lock()
			f.users--
			free := f.reused && f.users == 0
			e.mu.Unlock()
			if free {
				e.c.putChunkBuf(buf)
			}
			return nil
		}
		if f.moved == nil {
			f.moved = make(chan struct{})
		}
		moved := f.moved
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
		case <-moved:
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
	}
	if f.err != nil {
		return f.err
	}
	if f.e == nil {
		use(f.buf)
		return nil
	}
	e.mu.Lock()
	if f.reused {
		e.mu.Unlock()
		return errReused
	}
	f.users++
	e.mu.Unlock()
	use(f.buf)
	e.mu.Lock()
	f.users--
	free := f.reused && f.users == 0
	e.mu.Unlock()
	if free {
		e.c.putChunkBuf(f.buf)
	}
	return nil
}

// ended reports whether the flight is done.
func (f *flight) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// fetchRange starts fetching the chunks lo..hi that are neither on disk
// nor being fetched, in runs of up to runMax chunks, and returns the
// flights of the chunks lo..hi being fetched (those on disk are not in it).
// A run that starts in lo..hi may go on up to spec chunks past hi; past hi
// a run starts only when it is whole (runMax chunks, or up to the end), and
// only when the entry keeps chunks on disk.
//
// With an origin that streams (a Streamer), each run is one streamed read
// whose chunks are published one by one as they arrive. A sequential
// reader's runs (long) are its segments: aligned to runMax chunks, the
// window rounded up to a whole segment, each segment's missing chunks one
// GET (or several, split by chunks on disk or in flight, which are never
// fetched twice). They run in parallel and land in any order.
func (p *Part) fetchRange(ctx context.Context, lo, hi, spec int64, long bool) map[int64]*flight {
	e := p.e
	out := map[int64]*flight{}
	st, streams := p.origin.(Streamer)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.disk || e.unkept {
		// Nothing is kept past its readers: no speculation, and no
		// stream that outruns them.
		spec, long = 0, false
	}
	end := min(hi+spec, e.chunks-1)
	if long {
		end = min((end/runMax+1)*runMax-1, e.chunks-1) // whole segments
	}
	missing := e.missingLocked
	if e.flights == nil {
		e.flights = map[int64]*flight{}
	}
	add := func(i int64) *flight {
		f := &flight{done: make(chan struct{})}
		e.flights[i] = f
		if i <= hi {
			out[i] = f
		}
		return f
	}
	for i := lo; i <= end; {
		if f := e.flights[i]; f != nil {
			if i <= hi {
				out[i] = f
			}
			i++
			continue
		}
		if !missing(i) {
			i++
			continue
		}
		stop := i + runMax
		if long {
			stop = (i/runMax + 1) * runMax // the segment's end
		}
		j := i + 1
		for j <= end && j < stop && missing(j) {
			j++
		}
		if !long && i > hi && j-i < runMax && j < e.chunks {
			break
		}
		run := make([]*flight, j-i)
		for k := range run {
			run[k] = add(i + int64(k))
		}
		if streams {
			s := &stream{end: j, next: i, queue: run}
			e.streams = append(e.streams, s)
			go p.fetchStream(ctx, st, s)
		} else {
			go p.fetchRun(ctx, i, run)
		}
		i = j
	}
	return out
}

// missingLocked reports whether chunk i is neither on disk nor being
// fetched. The caller holds e.mu.
func (e *entry) missingLocked(i int64) bool {
	if e.flights[i] != nil {
		return false
	}
	_, ok := e.tags[i]
	return !ok || !e.disk
}

// leadMax is the most of a missing chunk's end (and at most a 16th of
// it) that a read beginning there takes with the next chunk's GET rather than wait for the whole
// chunk (see fetchLead).
const leadMax = 64 << 10

// fetchLead serves a read at off that goes on into the next chunk, when
// both chunks are missing and the read needs only the last few bytes of
// the first (a read at a plaintext offset on a chunk boundary needs the
// ciphertext block before it, the end of the chunk before): one streamed
// GET from off through the next chunk, whose first bytes go to the read
// alone and are never stored (the first chunk is fetched whole when read
// again), and whose next chunk is fetched, stored and published as any
// stream's. The read waits for its bytes, not for a whole chunk, and the
// GET replaces the two it would have made. It returns the read's flight
// for the first chunk, whose buf has the chunk's bytes from off on, or
// nil when the read is not such a read.
func (p *Part) fetchLead(ctx context.Context, off, last int64) *flight {
	e := p.e
	i := off / e.chunk
	lead := (i+1)*e.chunk - off
	st, ok := p.origin.(Streamer)
	if !ok || last <= i || lead > min(leadMax, e.chunk/16) {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.missingLocked(i) || !e.missingLocked(i+1) {
		return nil
	}
	if e.flights == nil {
		e.flights = map[int64]*flight{}
	}
	lf := &flight{done: make(chan struct{}), buf: make([]byte, e.chunkLen(i))}
	f := &flight{done: make(chan struct{})}
	e.flights[i+1] = f
	s := &stream{end: i + 2, next: i + 1, queue: []*flight{f}, lead: lf, leadLen: lead}
	e.streams = append(e.streams, s)
	go p.fetchStream(ctx, st, s)
	return lf
}

// chunkLen is chunk i's length; the last one may be short.
func (e *entry) chunkLen(i int64) int64 { return min(e.chunk, e.v.BigLen-i*e.chunk) }

// chunk hands chunk i to use, from disk or from the origin. When whole is
// not nil (the caller wants the whole chunk there), a chunk on disk is read
// into it and checked there, without use: a warm sequential read then
// copies each byte once less. A caller that uses only the chunk's first hi
// bytes may have them from a fetch before the rest has come (see wait).
func (p *Part) chunk(ctx context.Context, i int64, whole []byte, hi int64, use func([]byte)) error {
	e := p.e
	// A chunk stored between the look at the disk and the start of a fetch
	// is read from disk: once more at most, in practice.
	for range 4 {
		if t, ok := e.present(i); ok {
			dst := whole
			if dst == nil {
				dst = e.c.chunkBuf(e.chunkLen(i))
			}
			ok := e.readChunk(i, t, dst)
			if ok {
				p.diskBytes.Add(int64(len(dst)))
				e.c.diskBytes.Add(int64(len(dst)))
				if whole == nil {
					use(dst)
				}
			}
			if whole == nil {
				e.c.putChunkBuf(dst)
			}
			if ok {
				return nil
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if f := p.fetchRange(ctx, i, i, 0, false)[i]; f != nil {
			if err := f.wait(ctx, e, hi, use); !errors.Is(err, errReused) {
				return err
			}
			// Stored meanwhile, and its buffer taken back: read it from disk.
		}
	}
	return fmt.Errorf("cache: %s/%s chunk %d: neither on disk nor fetched", e.folder, e.name, i)
}

// fetchRun is the one shared fetch of the chunks from first on, one flight
// each, by one read of the origin. It runs on a context detached from the
// reader that started it, bounded by FetchTimeout. Each chunk is kept on
// disk before its flight ends.
func (p *Part) fetchRun(ctx context.Context, first int64, run []*flight) {
	e := p.e
	e.c.begin(e.key)
	defer e.c.end(e.key)
	e.c.inFlight <- struct{}{}
	defer func() { <-e.c.inFlight }()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.c.opt.FetchTimeout)
	defer cancel()
	off := first * e.chunk
	buf := make([]byte, min(int64(len(run))*e.chunk, e.v.BigLen-off))
	n, err := p.origin.ReadAt(ctx, buf, off)
	if n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("origin ended %d bytes early: %w", len(buf)-n, io.ErrUnexpectedEOF)
		}
		err = fmt.Errorf("cache: fetch %s/%s chunks %d-%d: %w", e.folder, e.name, first, first+int64(len(run))-1, err)
	} else {
		err = nil
		p.originBytes.Add(int64(n))
		e.c.originBytes.Add(int64(n))
	}
	for k, f := range run {
		i := first + int64(k)
		if err != nil {
			e.endFlight(i, f, nil, err)
			continue
		}
		b := buf[int64(k)*e.chunk:][:e.chunkLen(i)]
		e.store(i, b)
		e.endFlight(i, f, b, nil)
	}
}

// readChunk reads chunk i from disk into buf and reports whether it is
// whole and its tag is t. A chunk that fails is logged and forgotten.
func (e *entry) readChunk(i int64, t tag, buf []byte) bool {
	f, err := e.c.root.Open(e.data)
	if err == nil {
		_, err = f.ReadAt(buf, i*e.chunk)
		f.Close()
	}
	switch {
	case err != nil:
		e.c.log.Warn("cache: chunk unreadable, fetching it again", "folder", e.folder, "name", e.name, "chunk", i, "err", err)
	case !e.mkey.check(i, buf, t):
		e.c.log.Warn("cache: chunk fails its MAC, fetching it again", "folder", e.folder, "name", e.name, "chunk", i)
	default:
		return true
	}
	e.forget(i, t)
	return false
}

// store writes chunk i to the data file and records its tag, and reports
// whether it did. A disk error, or no room under the size bound, leaves the
// chunk unrecorded: the read is served anyway.
func (e *entry) store(i int64, buf []byte) bool {
	if !e.onDisk() {
		return false
	}
	n := int64(len(buf))
	if !e.c.reserve(e.key, e.gen, n) {
		return false
	}
	// O_WRONLY without O_CREATE: a file removed meanwhile is not brought back.
	f, err := e.c.root.OpenFile(e.data, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt(buf, i*e.chunk)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		e.c.addBytes(e.key, e.gen, -n)
		e.diskError("write chunk", err)
		return false
	}
	if !e.record(i, e.mkey.tag(i, buf)) {
		e.c.addBytes(e.key, e.gen, -n)
		return false
	}
	return true
}
