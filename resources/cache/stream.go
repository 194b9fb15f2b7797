package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Streamer is an Origin that can also read a long range as it arrives
// (the CDN's one ranged GET, read as the chunks are wanted). The cache
// uses it, when the origin has it, to publish each chunk of a run as soon
// as its bytes are in, and to fetch a sequential reader's segments as
// several GETs at once: an object store takes about as long to start a
// request as to send several MiB, and a far CDN caps what one connection
// carries.
type Streamer interface {
	// Stream returns the bytes [off, off+n), ending with io.EOF; ctx
	// bounds the whole read, and Close ends it early. A cut or stalled
	// body resumes where it stopped, pinned to the same version.
	Stream(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

// planner is how many segments a sequential reader of a Part fetches at
// once: one at first, so that a reader that stops soon costs one GET, and
// twice as many for each segment it goes on into, up to Options.Streams. A
// reader that jumps, or that Warm calls without ahead, starts again at one.
type planner struct {
	mu      sync.Mutex
	seg     int64 // the segment the reader was last in
	streams int   // 0: none yet
}

func (pl *planner) reset() {
	pl.mu.Lock()
	pl.streams = 0
	pl.mu.Unlock()
}

// grow notes the reader in segment seg and returns how many segments it
// may have in flight past it.
func (pl *planner) grow(seg int64, most int) int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	switch {
	case pl.streams == 0 || seg < pl.seg || seg > pl.seg+int64(pl.streams)+1:
		pl.streams = 1
	case seg > pl.seg:
		for range seg - pl.seg {
			pl.streams = min(2*pl.streams, most)
		}
	}
	pl.seg = seg
	return pl.streams
}

// stream is one streamed run of chunks: the origin's bytes from chunk next
// up to end are being read, their flights in queue. Its fields are under
// the entry's lock.
type stream struct {
	end, next int64
	queue     []*flight
	// lead, when not nil, is a read's flight for the leadLen bytes before
	// chunk next, which the stream reads first (Part.fetchLead).
	lead    *flight
	leadLen int64
}

// dropStreamLocked ends s and returns the flights it was still to fill.
// The caller holds e.mu.
func (e *entry) dropStreamLocked(s *stream) []*flight {
	e.streams = slices.DeleteFunc(e.streams, func(o *stream) bool { return o == s })
	q := s.queue
	s.queue = nil
	return q
}

// fetchStream is the one shared fetch of the stream's chunks, in order,
// each handed to its readers as soon as it has arrived, and then stored.
// It holds one of the cache's MaxStreams tokens while its GET is open. It
// runs on a context detached from the reader that started it; each chunk
// must arrive within FetchTimeout of the stream starting to read it (the
// origin resumes a cut or stalled body within that time; a chunk that
// does not arrive fails with every chunk after it, and a later read tries
// again).
func (p *Part) fetchStream(ctx context.Context, st Streamer, s *stream) {
	e := p.e
	e.c.begin(e.key)
	defer e.c.end(e.key)
	// One of the cache's MaxStreams GETs: readers beyond them wait, rather
	// than every reader's segments each holding buffers at once.
	e.c.inFlight <- struct{}{}
	defer func() { <-e.c.inFlight }()
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	off := s.next*e.chunk - s.leadLen
	body, err := st.Stream(ctx, off, min(s.end*e.chunk, e.v.BigLen)-off)
	if err != nil {
		err = fmt.Errorf("cache: fetch %s/%s from chunk %d: %w", e.folder, e.name, s.next, err)
	} else {
		defer body.Close()
	}
	if lf := s.lead; lf != nil {
		if err == nil {
			t := time.AfterFunc(e.c.opt.FetchTimeout, func() {
				cancel(fmt.Errorf("no lead within %v: %w", e.c.opt.FetchTimeout, context.DeadlineExceeded))
			})
			n, rerr := io.ReadFull(body, lf.buf[int64(len(lf.buf))-s.leadLen:])
			t.Stop()
			if rerr != nil {
				if errors.Is(rerr, io.EOF) {
					rerr = io.ErrUnexpectedEOF
				}
				err = fmt.Errorf("cache: fetch %s/%s before chunk %d: %w", e.folder, e.name, s.next, rerr)
			}
			p.originBytes.Add(int64(n))
			e.c.originBytes.Add(int64(n))
		}
		lf.err = err
		close(lf.done)
	}
	// The chunks go to the disk from another goroutine, so that a chunk's
	// write and check overlap the network read of the next ones.
	type arrived struct {
		i int64
		f *flight
	}
	stores := make(chan arrived, storeAhead)
	storing := make(chan struct{})
	go func() {
		defer close(storing)
		for a := range stores {
			// A chunk not kept on disk (no room under MaxBytes) is
			// fetched again when read: fetch nothing ahead of the
			// readers until chunks are kept again.
			kept := e.storePublished(a.i, a.f)
			e.mu.Lock()
			e.unkept = !kept
			e.mu.Unlock()
			e.c.end(e.key)
		}
	}()
	defer func() {
		close(stores)
		<-storing
	}()
	for {
		e.mu.Lock()
		if s.next == s.end || err != nil {
			fail := e.dropStreamLocked(s)
			e.mu.Unlock()
			for k, f := range fail {
				e.endFlight(s.next+int64(k), f, nil, err)
			}
			return
		}
		i, f := s.next, s.queue[0]
		e.mu.Unlock()

		buf := e.c.chunkBuf(e.chunkLen(i))
		t := time.AfterFunc(e.c.opt.FetchTimeout, func() {
			cancel(fmt.Errorf("no whole chunk within %v: %w", e.c.opt.FetchTimeout, context.DeadlineExceeded))
		})
		n, rerr := e.fill(f, body, buf)
		t.Stop()
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				rerr = fmt.Errorf("origin ended %d bytes early: %w", len(buf)-n, io.ErrUnexpectedEOF)
			}
			err = fmt.Errorf("cache: fetch %s/%s chunk %d: %w", e.folder, e.name, i, rerr)
			if e.endFill(f) { // a reader may still copy from buf: the GC's
				e.c.unstored.Add(-1)
			} else {
				e.c.putChunkBuf(buf)
			}
			continue
		}
		p.originBytes.Add(int64(n))
		e.c.originBytes.Add(int64(n))
		e.mu.Lock()
		s.next++
		s.queue = s.queue[1:]
		e.mu.Unlock()
		e.publish(f, buf)
		e.c.begin(e.key)
		stores <- arrived{i, f}
	}
}

// fill reads buf whole from body as io.ReadFull does, for flight f, whose
// readers of a prefix of the chunk have it as soon as it is in (see
// flight.wait).
func (e *entry) fill(f *flight, body io.Reader, buf []byte) (int, error) {
	e.mu.Lock()
	f.filling, f.got = buf, 0
	e.mu.Unlock()
	n := 0
	for n < len(buf) {
		m, err := body.Read(buf[n:])
		n += m
		if m > 0 {
			e.mu.Lock()
			f.got = int64(n)
			if f.moved != nil {
				close(f.moved)
				f.moved = nil
			}
			e.mu.Unlock()
		}
		if err != nil {
			if n == len(buf) {
				break
			}
			if errors.Is(err, io.EOF) && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

// endFill ends flight f's filling and reports whether a reader had bytes
// of it before (see flight.wait).
func (e *entry) endFill(f *flight) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	f.filling, f.got = nil, 0
	return f.peeked
}

// storeAhead bounds how many chunks a stream has handed to its readers but
// not yet stored: its memory beside the chunk it reads.
const storeAhead = 4

// publish hands a fetched chunk, in buf from the cache's chunk buffers, to
// the readers of its flight at once. The flight stays in the entry's
// flights, done, until storePublished, so that a reader in between finds
// it rather than the disk.
func (e *entry) publish(f *flight, buf []byte) {
	e.c.unstored.Add(1)
	peeked := e.endFill(f)
	f.buf, f.e = buf, e
	close(f.done)
	if peeked {
		e.c.unstored.Add(-1)
	}
}

// storePublished stores chunk i of published flight f and ends the flight:
// readers after it read the disk, and its buffer goes back once its last
// reader is done. It reports whether the chunk is on disk; when it is not,
// its buffer stays with the readers that have the flight, and the GC.
func (e *entry) storePublished(i int64, f *flight) bool {
	defer e.c.unstored.Add(-1)
	ok := e.store(i, f.buf)
	e.mu.Lock()
	if e.flights[i] == f {
		delete(e.flights, i)
	}
	free := false
	if ok {
		f.reused = true
		free = f.users == 0
	}
	e.mu.Unlock()
	if free {
		e.c.putChunkBuf(f.buf)
	}
	return ok
}

// endFlight ends the fetch of chunk i with its bytes or an error.
func (e *entry) endFlight(i int64, f *flight, buf []byte, err error) {
	f.buf, f.err = buf, err
	e.mu.Lock()
	if e.flights[i] == f {
		delete(e.flights, i)
	}
	e.mu.Unlock()
	close(f.done)
}

// keptBufs bounds the chunk buffers a Cache keeps for reuse: a buffer
// fresh from the OS costs a page fault per page on its first fill, more
// than the network or disk read that fills it.
const keptBufs = 8

// chunkBuf is a buffer of n bytes (at most a chunk) from the cache's free
// chunk buffers.
func (c *Cache) chunkBuf(n int64) []byte { return *c.bufs.Get(int(n)) }

// Prefill readies n chunk buffers ahead of the first reads (see
// bufpool.Pool.Prefill).
func (c *Cache) Prefill(n int) { c.bufs.Prefill(n) }

// putChunkBuf gives a chunk's buffer back, once nothing reads it.
func (c *Cache) putChunkBuf(b []byte) {
	b = b[:cap(b)]
	c.bufs.Put(&b)
}
