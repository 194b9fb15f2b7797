package resources

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/azaion/loader/resources/cache"
)

// originLog is a cache.Origin over bytes that records each read.
type originLog struct {
	data []byte
	mu   sync.Mutex
	lens []int
}

func (o *originLog) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	o.mu.Lock()
	o.lens = append(o.lens, len(p))
	o.mu.Unlock()
	n := copy(p, o.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestReadAheadWarmsTheCache: a cold sequential read through the cache
// gives the exact plaintext, fetches every big-part byte once, and does so
// in runs of several chunks per origin read rather than one read per chunk.
func TestReadAheadWarmsTheCache(t *testing.T) {
	ctx := context.Background()
	const size = 40<<20 + 123
	plain, small, big := splitOf(t, size)
	c, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	origin := &originLog{data: big}
	v := cache.Version{SmallHash: cache.HashSmall(small), BigLen: int64(len(big)), ETag: `"e"`}
	part, err := c.Part("models", "m.bin", v, cache.NewKey(testKey, small), origin)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(ctx, testKey, small, BytesPart(big), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	r, err = NewReaderSize(testKey, small, part, int64(len(big)), r.Size())
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 128<<10)
	for off := int64(0); off < r.Size(); off += int64(len(buf)) {
		n, err := r.ReadAt(ctx, buf, off)
		if err != nil && err != io.EOF {
			t.Fatalf("ReadAt at %d: %v", off, err)
		}
		out = append(out, buf[:n]...)
	}
	if !bytes.Equal(out, plain) {
		t.Fatal("the plaintext read through the cache differs")
	}
	origin.mu.Lock()
	lens := origin.lens
	origin.mu.Unlock()
	total := 0
	for _, n := range lens {
		total += n
	}
	if total != len(big) {
		t.Fatalf("the origin was asked for %d bytes in %d reads, want each of the %d once", total, len(lens), len(big))
	}
	chunks := (len(big) + cache.DefaultChunkSize - 1) / cache.DefaultChunkSize
	if len(lens) > chunks/3 {
		t.Fatalf("%d origin reads for %d chunks (%v), want runs of several chunks", len(lens), chunks, lens)
	}
	t.Logf("%d chunks in %d origin reads", chunks, len(lens))
}
