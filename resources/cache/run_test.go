package cache

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestWarmFetchesWholeRunsAhead: Warm fetches the range asked for and, on
// disk, whole segments past it, without waiting; a read then finds every
// chunk on disk with the right bytes.
func TestWarmFetchesWholeRunsAhead(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(20*cs + 100)
	o := &memOrigin{data: r.big}
	p := part(t, c, r, o)
	p.Warm(context.Background(), cs, 2*cs, 16*cs)
	waitChunks(t, p, 15)
	// Chunks 1..7, the rest of the range's segment, and 8..15, the next
	// segment, in two runs; 16..20 are past the window.
	if got := o.fetched(); !slices.Equal(got, []int64{cs, 8 * cs}) {
		t.Fatalf("fetched %v, want runs at chunks 1 and 8", got)
	}
	readAll(t, p, r.big)
	if got := o.fetched(); !slices.Equal(got[:3], []int64{0, cs, 8 * cs}) {
		t.Fatalf("fetched %v, want chunk 0, then the runs at 1 and 8, then the rest", got)
	}
	if s := p.Stats(); s.OriginBytes != int64(len(r.big)) {
		t.Fatalf("origin bytes %d, want %d", s.OriginBytes, len(r.big))
	}
}

// TestWarmWithoutDiskFetchesOnlyTheRange: an entry that keeps nothing on
// disk (a name the cache does not keep) fetches nothing speculatively.
func TestWarmWithoutDiskFetchesOnlyTheRange(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(20 * cs)
	o := &memOrigin{data: r.big}
	long := strings.Repeat("m", maxFileName-len(metaSuffix)+1) // its sidecar's name would be too long
	p, err := c.Part("models", long, r.v, r.key, o)
	if err != nil {
		t.Fatal(err)
	}
	p.Warm(context.Background(), 0, 2*cs, 16*cs)
	deadline := time.Now().Add(5 * time.Second)
	for o.calls.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := o.fetched(); !slices.Equal(got, []int64{0}) {
		t.Fatalf("fetched %v, want one run of the 2 chunks asked for", got)
	}
}

// waitChunks waits until n chunks are on disk.
func waitChunks(t *testing.T, p *Part, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := p.Present(); got >= n {
			return
		}
		if time.Now().After(deadline) {
			got, _ := p.Present()
			t.Fatalf("%d chunks on disk after 5s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
