package resources

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chunkCounter counts how often each big-part chunk is asked for.
type chunkCounter struct {
	BytesPart
	mu    sync.Mutex
	reads map[int64]int
	asked atomic.Int64
}

func (c *chunkCounter) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	c.asked.Add(int64(len(p)))
	c.mu.Lock()
	for k := off / aheadChunk; k <= (off+int64(len(p))-1)/aheadChunk; k++ {
		c.reads[k]++
	}
	c.mu.Unlock()
	return c.BytesPart.ReadAt(ctx, p, off)
}

// TestReadAheadSequential: a sequential read in FUSE-sized pieces gives the
// exact plaintext and asks the big part for each of its chunks once (as a
// cache of 1 MiB chunks reads them), however the pieces fall on chunks.
func TestReadAheadSequential(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int64{9<<20 + 5, 6<<20 - 16} {
		plain, small, big := splitOf(t, size)
		part := &chunkCounter{BytesPart: big, reads: map[int64]int{}}
		r, err := NewReader(ctx, testKey, small, part, int64(len(big)))
		if err != nil {
			t.Fatal(err)
		}
		if r.ahead == nil {
			t.Fatalf("size %d: no read-ahead", size)
		}
		for _, piece := range []int{128 << 10, 1 << 20, 100<<10 + 16*3} {
			buf := make([]byte, piece)
			var out []byte
			r.ahead.drop()
			part.mu.Lock()
			part.reads = map[int64]int{}
			part.mu.Unlock()
			for off := int64(0); off < r.Size(); off += int64(piece) {
				n, err := r.ReadAt(ctx, buf, off)
				if err != nil && err != io.EOF {
					t.Fatalf("size %d piece %d: ReadAt at %d: %v", size, piece, off, err)
				}
				out = append(out, buf[:n]...)
			}
			if !bytes.Equal(out, plain) {
				t.Fatalf("size %d piece %d: reads differ from the plaintext", size, piece)
			}
			part.mu.Lock()
			for k, n := range part.reads {
				if n != 1 {
					t.Errorf("size %d piece %d: big chunk %d asked for %d times, want once", size, piece, k, n)
				}
			}
			if want := (int64(len(big)) + aheadChunk - 1) / aheadChunk; int64(len(part.reads)) != want {
				t.Errorf("size %d piece %d: %d big chunks asked for, want %d", size, piece, len(part.reads), want)
			}
			part.mu.Unlock()
		}
	}
}

// TestReadAheadMixed: sequential runs, jumps and random reads from several
// goroutines all give the exact plaintext. Run with -race.
func TestReadAheadMixed(t *testing.T) {
	ctx := context.Background()
	plain, r := memReader(t, 9<<20+777)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			buf := make([]byte, 300<<10)
			off := rng.Int64N(r.Size())
			for range 40 {
				if rng.IntN(4) == 0 {
					off = rng.Int64N(r.Size())
				}
				p := buf[:1+rng.IntN(len(buf))]
				n, err := r.ReadAt(ctx, p, off)
				if err != nil && !(err == io.EOF && off+int64(n) == r.Size()) {
					t.Errorf("ReadAt(%d at %d) = %d, %v", len(p), off, n, err)
					return
				}
				if !bytes.Equal(p[:n], plain[off:off+int64(n)]) {
					t.Errorf("ReadAt(%d at %d) gave other bytes", len(p), off)
					return
				}
				off += int64(n)
				if off >= r.Size() {
					off = 0
				}
			}
		}()
	}
	wg.Wait()
}

// flakyPart fails the reads that touch [from, to) while failing is set.
type flakyPart struct {
	BytesPart
	from, to int64
	failing  atomic.Bool
}

var errFlaky = errors.New("range get: connection reset")

func (f *flakyPart) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if f.failing.Load() && off < f.to && off+int64(len(p)) > f.from {
		return 0, errFlaky
	}
	return f.BytesPart.ReadAt(ctx, p, off)
}

// TestReadAheadErrorNotKept: a chunk whose fetch failed gives its error to
// the read that needs it, and the next read of it fetches it again.
func TestReadAheadErrorNotKept(t *testing.T) {
	ctx := context.Background()
	plain, small, big := splitOf(t, 8<<20)
	part := &flakyPart{BytesPart: big, from: 3 << 20, to: 3<<20 + 1}
	r, err := NewReader(ctx, testKey, small, part, int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	part.failing.Store(true)
	buf := make([]byte, 1<<20)
	var failed bool
	off := int64(0)
	for ; off < r.Size(); off += int64(len(buf)) {
		if _, err := r.ReadAt(ctx, buf, off); err != nil {
			if !errors.Is(err, errFlaky) {
				t.Fatalf("ReadAt at %d: %v, want %v", off, err, errFlaky)
			}
			failed = true
			break
		}
	}
	if !failed {
		t.Fatal("no read failed over the failing range")
	}
	part.failing.Store(false)
	n, err := r.ReadAt(ctx, buf, off)
	if err != nil || !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
		t.Fatalf("ReadAt at %d after the failure: %d, %v", off, n, err)
	}
}

// stallPart blocks every read until its context ends.
type stallPart struct{ BytesPart }

func (stallPart) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestReadAheadCanceled: a reader whose context ends returns at once, even
// while the chunk it waits for is still being fetched.
func TestReadAheadCanceled(t *testing.T) {
	ctx := context.Background()
	_, small, big := splitOf(t, 8<<20)
	r, err := NewReader(ctx, testKey, small, BytesPart(big), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	r.big = stallPart{}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = r.ReadAt(cctx, make([]byte, 4096), 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadAt = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ReadAt returned after %v", d)
	}
	r.ahead.drop()
}

// TestReadAheadBounded: a stream holds at most its window of chunks, and
// none once idle.
func TestReadAheadBounded(t *testing.T) {
	ctx := context.Background()
	_, small, big := splitOf(t, 16<<20)
	r, err := NewReader(ctx, testKey, small, BytesPart(big), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	most := 0
	for off := int64(0); off < r.Size(); off += int64(len(buf)) {
		r.ReadAt(ctx, buf, off)
		r.ahead.mu.Lock()
		most = max(most, len(r.ahead.live))
		r.ahead.mu.Unlock()
	}
	if most > aheadMax+aheadKeep+2 {
		t.Errorf("%d chunks live at once, want at most %d", most, aheadMax+aheadKeep+2)
	}
	if most < aheadMax {
		t.Errorf("at most %d chunks live: the window never grew to %d", most, aheadMax)
	}
	deadline := time.Now().Add(aheadIdle + 5*time.Second)
	for {
		r.ahead.mu.Lock()
		n := len(r.ahead.live)
		r.ahead.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d chunks still live %v after the last read", n, aheadIdle+5*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkReadSequential reads a 64 MiB resource held in memory in FUSE's
// 1 MiB requests, with and without read-ahead: the decrypting path alone,
// for `go test -bench ReadSequential -cpuprofile`.
func BenchmarkReadSequential(b *testing.B) {
	ctx := context.Background()
	_, small, big := splitOf(b, 64<<20)
	for _, ahead := range []bool{true, false} {
		name := "ahead"
		if !ahead {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			r, err := NewReader(ctx, testKey, small, BytesPart(big), int64(len(big)))
			if err != nil {
				b.Fatal(err)
			}
			if !ahead {
				r.ahead = nil
			}
			buf := make([]byte, 1<<20)
			b.SetBytes(r.Size())
			for b.Loop() {
				for off := int64(0); off < r.Size(); off += int64(len(buf)) {
					if _, err := r.ReadAt(ctx, buf, off); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
