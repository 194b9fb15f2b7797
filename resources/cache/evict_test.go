package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// diskBytes is what the cache's data files hold on disk (allocated blocks:
// they are sparse).
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && filepath.Ext(p) == ".big" {
			n += fi.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	return n
}

func bounded(t *testing.T, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(dir, Options{ChunkSize: cs, MaxBytes: max, FetchTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.grace = 0
	t.Cleanup(func() { c.Close() })
	return c
}

func namedPart(t *testing.T, c *Cache, name string, r resource, o Origin) *Part {
	t.Helper()
	p, err := c.Part("models", name, r.v, r.key, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBoundHolds fills a cache bounded to 10 chunks with 5 resources of 4
// chunks: after every read the cache counts and holds on disk at most 10
// chunks, every byte served is right, and the least recently used resource
// is the one evicted.
func TestBoundHolds(t *testing.T) {
	dir := t.TempDir()
	const max = 10 * cs
	c := bounded(t, dir, max)
	names := []string{"a", "b", "c", "d", "e"}
	res := map[string]resource{}
	for _, n := range names {
		res[n] = newResource(4 * cs)
	}
	check := func(when string) {
		t.Helper()
		if got := c.Size(); got > max {
			t.Fatalf("%s: cache counts %d bytes, bound %d", when, got, max)
		}
		if got := diskBytes(t, dir); got > max {
			t.Fatalf("%s: %d bytes on disk, bound %d", when, got, max)
		}
	}
	read := func(n string) *memOrigin {
		o := &memOrigin{data: res[n].big}
		readAll(t, namedPart(t, c, n, res[n], o), res[n].big)
		check("after reading " + n)
		return o
	}
	read("a")
	read("b")
	time.Sleep(10 * time.Millisecond)
	if o := read("a"); o.calls.Load() != 0 {
		t.Fatalf("a refetched %v while it fits", o.fetched())
	}
	read("c") // evicts b, the least recently used
	if _, ok := c.Lookup("models", "b"); ok {
		t.Fatal("b kept, a evicted: not LRU")
	}
	if n := c.Stats().Evictions; n != 1 {
		t.Fatalf("Stats().Evictions = %d after one eviction", n)
	}
	if m, ok := c.Lookup("models", "a"); !ok || m.Present != 4 {
		t.Fatalf("a: %v %+v", ok, m)
	}
	for _, n := range names {
		read(n)
	}
	// A restart counts what is on disk.
	c.Close()
	c2 := bounded(t, dir, max)
	if c2.Size() != c.Size() || c2.Size() > max || c2.Size() == 0 {
		t.Fatalf("after restart %d bytes counted, before %d", c2.Size(), c.Size())
	}
	o := &memOrigin{data: res["a"].big}
	readAll(t, namedPart(t, c2, "a", res["a"], o), res["a"].big)
	if c2.Size() > max || diskBytes(t, dir) > max {
		t.Fatalf("after restart: %d counted, %d on disk", c2.Size(), diskBytes(t, dir))
	}
}

// TestEvictionSparesReadsInProgress: while a read of x waits on its origin,
// filling the cache with others never evicts x; what does not fit is
// served without being kept, and the bound holds throughout.
func TestEvictionSparesReadsInProgress(t *testing.T) {
	dir := t.TempDir()
	const max = 6 * cs
	c := bounded(t, dir, max)
	x := newResource(4 * cs)
	readAt(t, namedPart(t, c, "x", x, &memOrigin{data: x.big}), 0, 3*cs) // chunks 0..2 on disk
	gate := make(chan struct{})
	ox := &memOrigin{data: x.big, gate: gate}
	px := namedPart(t, c, "x", x, ox)
	done := make(chan error, 1)
	got := make([]byte, 4*cs)
	go func() {
		_, err := px.ReadAt(context.Background(), got, 0) // waits on chunk 3
		done <- err
	}()
	for ox.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for _, n := range []string{"y", "z"} {
		r := newResource(4 * cs)
		readAll(t, namedPart(t, c, n, r, &memOrigin{data: r.big}), r.big)
		if c.Size() > max || diskBytes(t, dir) > max {
			t.Fatalf("after %s: %d counted, %d on disk", n, c.Size(), diskBytes(t, dir))
		}
	}
	if m, ok := c.Lookup("models", "x"); !ok || m.Present < 3 {
		t.Fatalf("x evicted while being read: %v %+v", ok, m)
	}
	close(gate)
	if err := <-done; err != nil || !bytes.Equal(got, x.big) {
		t.Fatalf("read of x: %v, right bytes %v", err, bytes.Equal(got, x.big))
	}
	if c.Size() > max || diskBytes(t, dir) > max {
		t.Fatalf("at the end: %d counted, %d on disk", c.Size(), diskBytes(t, dir))
	}
}

// TestUploadLargerThanBound is not kept; one that fits evicts others.
func TestUploadAndBound(t *testing.T) {
	dir := t.TempDir()
	const max = 6 * cs
	c := bounded(t, dir, max)
	a := newResource(4 * cs)
	readAll(t, namedPart(t, c, "a", a, &memOrigin{data: a.big}), a.big)
	put := func(name string, r resource) error {
		w, err := c.Writer("models", name, r.key)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(r.big)
		return w.Commit(r.v)
	}
	if err := put("huge", newResource(7*cs)); err == nil {
		t.Fatal("an upload larger than the bound was kept")
	}
	b := newResource(4 * cs)
	if err := put("b", b); err != nil {
		t.Fatal(err)
	}
	if c.Size() > max || diskBytes(t, dir) > max {
		t.Fatalf("%d counted, %d on disk", c.Size(), diskBytes(t, dir))
	}
	if _, ok := c.Lookup("models", "a"); ok {
		t.Fatal("a kept beside b beyond the bound")
	}
	o := &memOrigin{data: b.big}
	readAll(t, namedPart(t, c, "b", b, o), b.big)
	if o.calls.Load() != 0 {
		t.Fatal("the upload was not kept")
	}
}
