package fs

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// TestStackSequentialParallelStreams: a cold sequential read through the
// kernel mount (its read-ahead and out-of-order requests included) across
// a far, narrow CDN link (10 ms each way, 4 MB/s per connection) has
// several ranged GETs in flight at once and returns the exact bytes.
func TestStackSequentialParallelStreams(t *testing.T) {
	s := newStack(t, testbed.Options{ProxyCDN: true})
	src := newPattern(13, 24<<20+123)
	want := s.upload(t, nil, "m.bin", src)
	s.bed.CDNProxy.SetShape(cdntest.Shape{Latency: 10 * time.Millisecond, Rate: 4 << 20})
	_, dir := s.fresh(t, Options{})
	f, err := os.Open(filepath.Join(dir, "m.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The open's own GETs (the tail, the first chunk) are done once its
	// first byte is read: count the connections of the read alone (a
	// lower bound on its GETs in flight, which may reuse idle ones).
	if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatal(err)
	}
	open := s.bed.CDNProxy.OpenConns()
	s.bed.CDNProxy.ResetMaxConns()
	start := time.Now()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil || n != src.size || [32]byte(h.Sum(nil)) != want {
		t.Fatalf("read %d bytes, %v, SHA-256 %x; want %d bytes, %x", n, err, h.Sum(nil), src.size, want)
	}
	conns := s.bed.CDNProxy.MaxConns() - open
	t.Logf("read %d MiB through the mount in %v: %d more connections open at once at the proxy",
		n>>20, time.Since(start).Round(time.Millisecond), conns)
	if conns < 2 {
		t.Fatalf("at most %d more connections to the CDN at once, want more than one (one GET at a time: 1)", conns)
	}
}
