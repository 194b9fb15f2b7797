package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStreamer is a memOrigin that also streams. Each stream's body stops
// before byte holdAt of the big part until hold closes (or its context
// ends, or, with stall set, only its context ends), and ReadAt is not
// expected to be called.
type memStreamer struct {
	memOrigin
	holdAt int64
	hold   chan struct{}
	stall  bool
	delay  time.Duration // before each Read

	smu     sync.Mutex
	streams [][2]int64 // off, n of each Stream call
}

func (o *memStreamer) Stream(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	o.smu.Lock()
	o.streams = append(o.streams, [2]int64{off, n})
	o.smu.Unlock()
	return &memBody{o: o, ctx: ctx, off: off, end: off + n}, nil
}

func (o *memStreamer) opened() [][2]int64 {
	o.smu.Lock()
	defer o.smu.Unlock()
	return slices.Clone(o.streams)
}

type memBody struct {
	o        *memStreamer
	ctx      context.Context
	off, end int64
}

func (b *memBody) Read(p []byte) (int, error) {
	time.Sleep(b.o.delay)
	if b.off >= min(b.end, int64(len(b.o.data))) {
		return 0, io.EOF
	}
	if b.o.hold != nil && b.off == b.o.holdAt {
		if b.o.stall {
			<-b.ctx.Done()
			return 0, context.Cause(b.ctx)
		}
		select {
		case <-b.o.hold:
		case <-b.ctx.Done():
			return 0, context.Cause(b.ctx)
		}
	}
	lim := min(b.end, int64(len(b.o.data)))
	if b.o.hold != nil && b.off < b.o.holdAt {
		lim = min(lim, b.o.holdAt)
	}
	// A few bytes at a time, as a socket gives them.
	n := copy(p[:min(int64(len(p)), 1000)], b.o.data[b.off:lim])
	b.off += int64(n)
	return n, nil
}

func (b *memBody) Close() error { return nil }

// TestStreamPublishesChunksAsTheyArrive: a sequential reader's segments
// are streams, their chunks readable as soon as they are in while the rest
// is still on its way (a held segment does not hold the next one back),
// and the whole part comes from one Stream call per segment, no ReadAt.
func TestStreamPublishesChunksAsTheyArrive(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(40*cs + 100)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}, holdAt: 2*cs + 10, hold: make(chan struct{})}
	p := part(t, c, r, o)
	p.Warm(context.Background(), 0, cs, 16*cs)
	// Chunks 0 and 1 are in; chunk 2 is held back, and segment 1 (chunks
	// 8..15) comes in beside it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := make([]byte, 2*cs)
	if n, err := p.ReadAt(ctx, b, 0); err != nil || n != len(b) || string(b) != string(r.big[:2*cs]) {
		t.Fatalf("read of the chunks in while the run is held: %d, %v", n, err)
	}
	if got := readAt(t, p, 8*cs, 8*cs); string(got) != string(r.big[8*cs:16*cs]) {
		t.Fatal("segment 1 differs")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if _, err := p.ReadAt(short, b[:1], 2*cs+10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read of the held chunk's bytes not in yet: %v, want it to wait", err)
	}
	// The bytes of the held chunk that are in are read before the rest.
	if n, err := p.ReadAt(ctx, b[:10], 2*cs); err != nil || n != 10 || string(b[:10]) != string(r.big[2*cs:2*cs+10]) {
		t.Fatalf("read of the held chunk's first bytes: %d, %v", n, err)
	}
	close(o.hold)
	readSeq(t, p, r.big)
	checkSegments(t, o.opened(), int64(len(r.big)), nil)
	if got := len(o.opened()); got != 6 {
		t.Fatalf("streams %v, want one per segment", o.opened())
	}
	if calls := o.calls.Load(); calls != 0 {
		t.Fatalf("%d ReadAt calls beside the stream", calls)
	}
	if s := p.Stats(); s.OriginBytes != int64(len(r.big)) {
		t.Fatalf("origin bytes %d, want %d", s.OriginBytes, len(r.big))
	}
	// Each chunk is stored once its readers have it.
	_, total := p.Present()
	waitChunks(t, p, total)
}

// TestStreamsGrowWhileSequential: a sequential reader's first Warm asks
// for the segment it reads and the next; each segment it goes on into
// doubles the segments ahead of it, up to Options.Streams.
func TestStreamsGrowWhileSequential(t *testing.T) {
	c, err := Open(t.TempDir(), Options{ChunkSize: cs, FetchTimeout: 10 * time.Second, Streams: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := newResource(200 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	p := part(t, c, r, o)
	// Segment k is chunks 8k..8k+7; the reader in segment 0, then 1, 2, 3
	// has 1, 2, 4, 4 segments ahead of its own.
	for k, want := range []int{2, 4, 7, 8} {
		p.Warm(context.Background(), int64(k)*8*cs, cs, cs)
		waitOpened(t, o, want)
	}
	// A jump starts again from one segment ahead.
	p.Warm(context.Background(), 100*cs, cs, cs)
	got := waitOpened(t, o, 10)
	slices.SortFunc(got, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	if got[8] != [2]int64{100 * cs, 4 * cs} || got[9] != [2]int64{104 * cs, 8 * cs} {
		t.Fatalf("after a jump: streams %v, want the rest of segment 12 and segment 13 added", got)
	}
	readSeq(t, p, r.big)
	checkSegments(t, o.opened(), int64(len(r.big)), nil)
}

// TestStreamsBoundedAcrossReaders: however many sequential readers of
// however many parts, the cache has at most MaxStreams GETs open, and
// every reader gets its exact bytes.
func TestStreamsBoundedAcrossReaders(t *testing.T) {
	c, err := Open(t.TempDir(), Options{ChunkSize: cs, FetchTimeout: 10 * time.Second, Streams: 4, MaxStreams: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var g gauge
	var wg sync.WaitGroup
	for k := range 6 {
		r := newResource(64*cs + 7*k)
		o := &memStreamer{memOrigin: memOrigin{data: r.big}, delay: 200 * time.Microsecond}
		p, err := c.Part("models", fmt.Sprintf("m%d", k), r.v, r.key, gauged{o, &g})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := int64(3*cs + 17)
			b := make([]byte, step)
			for off := int64(0); off < int64(len(r.big)); off += step {
				p.Warm(context.Background(), off, step, 8*cs)
				n, err := p.ReadAt(context.Background(), b, off)
				if (err != nil && !errors.Is(err, io.EOF)) || string(b[:n]) != string(r.big[off:off+int64(n)]) {
					t.Errorf("part %d at %d: %d, %v", k, off, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if most := g.most.Load(); most > 3 || most < 2 {
		t.Fatalf("at most %d streams open at once, want 2 or 3 (MaxStreams 3)", most)
	}
}

// TestStreamsStopWhenNotKept: when the cache has no room for a reader's
// chunks (MaxBytes), segments fetched ahead would be fetched again when
// read: the reader gets about what it reads (a chunk that two reads
// share comes twice), not every segment twice or more.
func TestStreamsStopWhenNotKept(t *testing.T) {
	c, err := Open(t.TempDir(), Options{ChunkSize: cs, FetchTimeout: 10 * time.Second, MaxBytes: 4 * cs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := newResource(128 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	p := part(t, c, r, o)
	readSeq(t, p, r.big)
	if got, most := p.Stats().OriginBytes, int64(len(r.big))*3/2; got > most {
		t.Fatalf("%d bytes from the origin for a %d-byte part in a cache of 4 chunks, want at most %d", got, len(r.big), most)
	}
}

// gauge counts bodies open now, and the most at once.
type gauge struct{ now, most atomic.Int64 }

// gauged is a Streamer whose bodies count in a gauge until closed.
type gauged struct {
	*memStreamer
	g *gauge
}

func (s gauged) Stream(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	body, err := s.memStreamer.Stream(ctx, off, n)
	if err != nil {
		return nil, err
	}
	now := s.g.now.Add(1)
	for m := s.g.most.Load(); now > m && !s.g.most.CompareAndSwap(m, now); m = s.g.most.Load() {
	}
	return closeHook{body, func() { s.g.now.Add(-1) }}, nil
}

type closeHook struct {
	io.ReadCloser
	hook func()
}

func (c closeHook) Close() error {
	c.hook()
	return c.ReadCloser.Close()
}

// TestStreamGoesNoFurtherThanWanted: the streams read only the segments
// asked for (the range and the window ahead of it), and end with them.
func TestStreamGoesNoFurtherThanWanted(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(64 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	p := part(t, c, r, o)
	p.Warm(context.Background(), 0, 2*cs, 8*cs)
	waitChunks(t, p, 16)
	time.Sleep(100 * time.Millisecond)
	if got, _ := p.Present(); got != 16 {
		t.Fatalf("%d chunks on disk, want the 16 of the 2 segments asked for", got)
	}
	waitNoStreams(t, p, 5*time.Second)
	// A later read starts a stream of its own, from where it reads.
	readAt(t, p, 20*cs, cs)
	if got := o.opened(); len(got) != 3 || got[2][0] != 20*cs {
		t.Fatalf("streams %v, want a third one at chunk 20", got)
	}
}

// TestStreamStallFailsWithinBound: a stream that stops sending fails the
// chunk it waits for, and every chunk it was to fill, within FetchTimeout
// of the stall, with the chunks before it served exactly; a read after
// that fetches the chunk again.
func TestStreamStallFailsWithinBound(t *testing.T) {
	const bound = 300 * time.Millisecond
	c, err := Open(t.TempDir(), Options{ChunkSize: cs, FetchTimeout: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := newResource(32 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}, holdAt: 3*cs + 5, hold: make(chan struct{}), stall: true}
	p := part(t, c, r, o)
	p.Warm(context.Background(), 0, cs, 8*cs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := readAt(t, p, 0, 3*cs); string(got) != string(r.big[:3*cs]) {
		t.Fatal("chunks before the stall differ")
	}
	start := time.Now()
	b := make([]byte, cs)
	_, err = p.ReadAt(ctx, b, 5*cs)
	if took := time.Since(start); err == nil || took > bound+time.Second {
		t.Fatalf("read past a stall: %v after %v, want an error within %v", err, took, bound)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read past a stall: %v, want context.DeadlineExceeded", err)
	}
	o.holdAt = -1 // the origin answers again
	if got := readAt(t, p, 3*cs, 3*cs); string(got) != string(r.big[3*cs:6*cs]) {
		t.Fatal("chunks after the stall differ")
	}
}

// TestStreamErrorFailsItsChunks: an origin that ends early fails the
// chunks the stream was to fill with the error, not with wrong bytes.
func TestStreamErrorFailsItsChunks(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(16 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big[:5*cs+7]}}
	p := part(t, c, r, o)
	p.Warm(context.Background(), 0, cs, 8*cs)
	readAt(t, p, 0, 5*cs)
	_, err := p.ReadAt(context.Background(), make([]byte, cs), 5*cs)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read of a chunk the origin cut: %v, want io.ErrUnexpectedEOF", err)
	}
	waitChunks(t, p, 5)
	time.Sleep(50 * time.Millisecond)
	if got, _ := p.Present(); got != 5 {
		t.Fatalf("%d chunks on disk, want the 5 whole ones", got)
	}
}

// TestStreamConcurrentReaders: readers of one stream, each warming and
// reading the whole part at its own pace while the stream's buffers are
// reused, all get the exact bytes (run with -race, a buffer reused under a
// reader shows too).
func TestStreamConcurrentReaders(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(200*cs + 77)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	p := part(t, c, r, o)
	var wg sync.WaitGroup
	for k := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, cs+k*1000)
			for off := int64(0); off < int64(len(r.big)); off += int64(len(b)) {
				p.Warm(context.Background(), off, int64(len(b)), 8*cs)
				n, err := p.ReadAt(context.Background(), b, off)
				if (err != nil && !errors.Is(err, io.EOF)) || string(b[:n]) != string(r.big[off:off+int64(n)]) {
					t.Errorf("reader %d at %d: %d, %v, equal %v", k, off, n, err, string(b[:n]) == string(r.big[off:off+int64(n)]))
					return
				}
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.OriginBytes > 2*int64(len(r.big)) {
		t.Fatalf("%d bytes from the origin for a %d-byte part", s.OriginBytes, len(r.big))
	}
}

// TestStreamWithoutDisk: an entry that keeps nothing on disk streams just
// the chunks its readers ask for, and ends each stream once they have
// them, rather than keep GETs open that nothing can extend.
func TestStreamWithoutDisk(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(20 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	long := strings.Repeat("m", maxFileName-len(metaSuffix)+1) // its sidecar's name would be too long
	p, err := c.Part("models", long, r.v, r.key, o)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < int64(len(r.big)); off += 2 * cs {
		p.Warm(context.Background(), off, 2*cs, 16*cs)
		if got := readAt(t, p, off, 2*cs); string(got) != string(r.big[off:off+2*cs]) {
			t.Fatalf("read at %d differs", off)
		}
	}
	for _, s := range o.opened() {
		if s[1] > 2*cs {
			t.Fatalf("streams %v: one asks for more than the 2 chunks read", o.opened())
		}
	}
	waitNoStreams(t, p, time.Second)
}

// TestStreamSegmentsBound: a segment's GET ends where chunks on disk or
// in flight begin, so that no byte crosses the wire twice.
func TestStreamSegmentsBound(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(40 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	p := part(t, c, r, o)
	readAt(t, p, 29*cs, 2*cs) // chunks 29 and 30 on disk
	readSeq(t, p, r.big)
	got := o.opened()
	checkSegments(t, got, int64(len(r.big)), nil)
	if !slices.Contains(got, [2]int64{24 * cs, 5 * cs}) || !slices.Contains(got, [2]int64{31 * cs, cs}) {
		t.Fatalf("streams %v: want segment 3 cut at chunk 29 and resumed at 31", got)
	}
	waitChunks(t, p, 40)
}

// waitOpened waits for o's n-th Stream call and returns the calls, failing
// if there are more.
func waitOpened(t *testing.T, o *memStreamer, n int) [][2]int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(o.opened()) < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if got := o.opened(); len(got) != n {
		t.Fatalf("streams %v, want %d", got, n)
	}
	return o.opened()
}

// readSeq reads the whole part as a sequential reader does, warming each
// range with ahead > 0 before reading it, and checks its bytes.
func readSeq(t *testing.T, p *Part, want []byte) {
	t.Helper()
	step := int64(3*cs + 17)
	for off := int64(0); off < int64(len(want)); off += step {
		n := min(step, int64(len(want))-off)
		p.Warm(context.Background(), off, n, 8*cs)
		if got := readAt(t, p, off, n); string(got) != string(want[off:off+n]) {
			t.Fatalf("read at %d differs", off)
		}
	}
}

// checkSegments checks that streams (off, n) never cross a segment of
// runMax chunks and never overlap, and that with the ranges in extra they
// cover [0, size) once.
func checkSegments(t *testing.T, streams [][2]int64, size int64, extra [][2]int64) {
	t.Helper()
	all := slices.Clone(streams)
	for _, s := range streams {
		if s[0]/(runMax*cs) != (s[0]+s[1]-1)/(runMax*cs) {
			t.Fatalf("stream %v crosses a segment: %v", s, streams)
		}
	}
	all = append(all, extra...)
	slices.SortFunc(all, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	at := int64(0)
	for _, s := range all {
		if s[0] != at {
			t.Fatalf("ranges %v: gap or overlap at %d", all, at)
		}
		at += s[1]
	}
	if at != size {
		t.Fatalf("ranges %v end at %d, want %d", all, at, size)
	}
}

// waitNoStreams waits up to within for p's streams to end.
func waitNoStreams(t *testing.T, p *Part, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p.e.mu.Lock()
		n := len(p.e.streams)
		p.e.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d streams still open %v after their chunks were read", n, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStreamLeadBeforeChunk: a cold read that needs only the last bytes of
// a chunk and goes on into the next takes them with the next chunk's GET:
// one Stream call from the read's offset, exact bytes, the next chunk
// stored, the first not (it is fetched whole when read again).
func TestStreamLeadBeforeChunk(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(10 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	p := part(t, c, r, o)
	off := int64(5*cs - 48)
	if got := readAt(t, p, off, 1000); string(got) != string(r.big[off:off+1000]) {
		t.Fatal("read across the chunk boundary differs")
	}
	if got := o.opened(); !slices.Equal(got, [][2]int64{{off, 48 + cs}}) {
		t.Fatalf("streams %v, want one from %d through chunk 5", got, off)
	}
	waitChunks(t, p, 1)
	if _, ok := p.e.present(4); ok {
		t.Fatal("chunk 4 stored from a GET of its last bytes")
	}
	if got := readAt(t, p, 4*cs, cs); string(got) != string(r.big[4*cs:5*cs]) {
		t.Fatal("chunk 4 differs when read whole")
	}
	if calls := o.calls.Load(); calls != 0 {
		t.Fatalf("%d ReadAt calls beside the streams", calls)
	}
}
