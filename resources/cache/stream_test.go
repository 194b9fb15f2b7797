package cache

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
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

// TestStreamPublishesChunksAsTheyArrive: a sequential reader's run is one
// stream, its chunks readable as soon as they are in while the rest is
// still on its way, and later reads extend the same stream rather than
// start new ones: the whole part comes from one Stream call, no ReadAt.
func TestStreamPublishesChunksAsTheyArrive(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(40*cs + 100)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}, holdAt: 2*cs + 10, hold: make(chan struct{})}
	p := part(t, c, r, o)
	p.Warm(context.Background(), 0, cs, 16*cs)
	// Chunks 0 and 1 are in; chunk 2 is held back, and the run goes on
	// to chunk 16 at least.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := make([]byte, 2*cs)
	if n, err := p.ReadAt(ctx, b, 0); err != nil || n != len(b) || string(b) != string(r.big[:2*cs]) {
		t.Fatalf("read of the chunks in while the run is held: %d, %v", n, err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if _, err := p.ReadAt(short, b[:1], 2*cs); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read of the held chunk: %v, want it to wait", err)
	}
	close(o.hold)
	readAll(t, p, r.big)
	if got := o.opened(); !slices.Equal(got, [][2]int64{{0, int64(len(r.big))}}) {
		t.Fatalf("streams %v, want one of the whole part", got)
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

// TestStreamGoesNoFurtherThanWanted: the stream reads only the chunks
// asked for (the range and what is ahead of it), and ends its GET when no
// reader wants more.
func TestStreamGoesNoFurtherThanWanted(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(64 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}}
	p := part(t, c, r, o)
	p.Warm(context.Background(), 0, 2*cs, 8*cs)
	waitChunks(t, p, 10)
	time.Sleep(100 * time.Millisecond)
	if got, _ := p.Present(); got != 10 {
		t.Fatalf("%d chunks on disk, want the 10 asked for", got)
	}
	waitNoStreams(t, p, streamIdle+5*time.Second)
	// A later read starts a stream of its own, from where it reads.
	readAt(t, p, 20*cs, cs)
	if got := o.opened(); len(got) != 2 || got[1][0] != 20*cs {
		t.Fatalf("streams %v, want a second one at chunk 20", got)
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

// TestStreamJoinAndBound: a read a little past a stream's wanted chunks is
// answered by that stream (no GET of its own, the gap wanted too), and a
// stream's GET ends where chunks on disk begin, so that no byte crosses
// the wire twice.
func TestStreamJoinAndBound(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(40 * cs)
	o := &memStreamer{memOrigin: memOrigin{data: r.big}, holdAt: 2 * cs, hold: make(chan struct{})}
	p := part(t, c, r, o)
	readAt(t, p, 30*cs, cs) // chunk 30 on disk (its own stream, held at no byte of it)
	p.Warm(context.Background(), 0, cs, cs)
	// The stream wants chunks 0 and 1 and is held at chunk 2; a read of
	// chunk 5 joins it.
	done := make(chan []byte)
	go func() { done <- readAt(t, p, 5*cs, cs) }()
	time.Sleep(50 * time.Millisecond)
	close(o.hold)
	if got := <-done; string(got) != string(r.big[5*cs:6*cs]) {
		t.Fatal("chunk 5 differs")
	}
	got := o.opened()
	want := [][2]int64{{30 * cs, cs}, {0, 30 * cs}}
	if !slices.Equal(got, want) {
		t.Fatalf("streams %v, want %v: chunk 30 alone, then one from 0 up to it", got, want)
	}
	waitChunks(t, p, 7)
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
