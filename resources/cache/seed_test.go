package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSeedServesAndStores: a chunk delivered through SeedStream is what a reader
// waiting for it gets, is kept on disk with its CRC (a fresh Cache on the
// same directory reads it without the origin) and counts as fetched; the
// origin is never asked for it.
func TestSeedServesAndStores(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(3*cs + 100)
	o := &memOrigin{data: r.big}
	p := part(t, c, r, o)
	deliver := p.SeedStream(0)
	if deliver == nil {
		t.Fatal("SeedStream of a missing chunk returned nil")
	}
	if again := p.SeedStream(0); again != nil {
		t.Fatal("a second SeedStream of a chunk being seeded did not return nil")
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 100)
		if _, err := p.ReadAt(context.Background(), b, 50); err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatal("a read of a chunk being seeded did not wait for it")
	case <-time.After(50 * time.Millisecond):
	}
	deliver(body(slices.Clone(r.big[:cs])))
	if b := <-got; !bytes.Equal(b, r.big[50:150]) {
		t.Fatal("the read waiting for the seeded chunk got other bytes")
	}
	if n := o.calls.Load(); n != 0 {
		t.Fatalf("the origin was asked %d times for a seeded chunk", n)
	}
	if s := p.Stats(); s.OriginBytes != cs {
		t.Fatalf("origin bytes %d, want %d", s.OriginBytes, cs)
	}
	waitChunks(t, p, 1) // deliver stores in the background
	if on, _ := p.Present(); on != 1 || !c.Has("models", "yolo.onnx", 0) || c.Has("models", "yolo.onnx", 1) {
		t.Fatalf("%d chunks on disk, Has(0) %v, Has(1) %v; want chunk 0 only", on, c.Has("models", "yolo.onnx", 0), c.Has("models", "yolo.onnx", 1))
	}
	if p.SeedStream(0) != nil {
		t.Fatal("SeedStream of a chunk on disk did not return nil")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := open(t, dir)
	if !c2.Has("models", "yolo.onnx", 0) {
		t.Fatal("a fresh Cache does not see the seeded chunk in the sidecar")
	}
	o2 := &memOrigin{data: r.big}
	p2 := part(t, c2, r, o2)
	b := make([]byte, cs)
	if _, err := p2.ReadAt(context.Background(), b, 0); err != nil || !bytes.Equal(b, r.big[:cs]) {
		t.Fatalf("read of the seeded chunk from disk: %v", err)
	}
	if n := o2.calls.Load(); n != 0 {
		t.Fatalf("the origin was asked %d times for a chunk on disk", n)
	}
}

// TestSeedNothingFetchesFromOrigin: deliver(nil), or bytes of the wrong
// length (a body cut short), makes the cache fetch the chunk itself, and the waiting reader
// gets the origin's bytes.
func TestSeedNothingFetchesFromOrigin(t *testing.T) {
	for _, bad := range [][]byte{nil, make([]byte, 3)} {
		c := open(t, t.TempDir())
		r := newResource(2*cs + 7)
		o := &memOrigin{data: r.big}
		p := part(t, c, r, o)
		deliver := p.SeedStream(2)
		go deliver(body(bad))
		b := make([]byte, 7)
		if _, err := p.ReadAt(context.Background(), b, 2*cs); err != nil || !bytes.Equal(b, r.big[2*cs:]) {
			t.Fatalf("read of the last chunk: %v, %x", err, b)
		}
		if got := o.fetched(); !slices.Equal(got, []int64{2 * cs}) {
			t.Fatalf("fetched %v, want the last chunk once", got)
		}
	}
}

// TestSeedWithoutDisk: an entry that keeps nothing on disk shares the
// seeded chunk with the reader waiting for it, and a later read fetches it.
func TestSeedWithoutDisk(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(2 * cs)
	o := &memOrigin{data: r.big}
	long := strings.Repeat("m", maxFileName-len(metaSuffix)+1)
	p, err := c.Part("models", long, r.v, r.key, o)
	if err != nil {
		t.Fatal(err)
	}
	deliver := p.SeedStream(0)
	if deliver == nil {
		t.Fatal("SeedStream on an entry without disk returned nil")
	}
	done := make(chan error, 1)
	b := make([]byte, cs)
	go func() {
		_, err := p.ReadAt(context.Background(), b, 0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	deliver(body(slices.Clone(r.big[:cs])))
	if err := <-done; err != nil || !bytes.Equal(b, r.big[:cs]) {
		t.Fatalf("read waiting for the seed: %v", err)
	}
	if n := o.calls.Load(); n != 0 {
		t.Fatalf("the origin was asked %d times", n)
	}
	// Once the seeded chunk's flight has ended (deliver's store, which
	// keeps nothing here, runs in the background), a new SeedStream is taken.
	var again func(io.ReadCloser)
	for deadline := time.Now().Add(5 * time.Second); again == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		again = p.SeedStream(0)
	}
	if again == nil {
		t.Fatal("an entry without disk refused a second SeedStream of a chunk it does not keep")
	}
	again(body(slices.Clone(r.big[:cs])))
	if p.SeedStream(2) != nil || p.SeedStream(-1) != nil {
		t.Fatal("SeedStream past the end returned a deliver")
	}
}

// TestSeedStreamPrefixThenFallback: a chunk delivered as a body through
// SeedStream hands a reader its bytes as soon as they are in, while a
// reader of bytes still to come waits; a body that then fails leaves the
// chunk to the origin, whose fetch gives that reader the exact bytes and
// is stored.
func TestSeedStreamPrefixThenFallback(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(3*cs + 100)
	o := &memOrigin{data: r.big}
	p := part(t, c, r, o)
	deliver := p.SeedStream(0)
	if deliver == nil {
		t.Fatal("SeedStream of a missing chunk returned nil")
	}
	pr, pw := io.Pipe()
	deliver(pr)
	go pw.Write(r.big[:100])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := make([]byte, 50)
	if n, err := p.ReadAt(ctx, b, 10); err != nil || n != 50 || !bytes.Equal(b, r.big[10:60]) {
		t.Fatalf("read of bytes in: %d, %v", n, err)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 100)
		if _, err := p.ReadAt(context.Background(), b, 200); err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatal("a read of bytes not in yet did not wait for them")
	case <-time.After(50 * time.Millisecond):
	}
	if n := o.calls.Load(); n != 0 {
		t.Fatalf("the origin was asked %d times while the body came", n)
	}
	pw.CloseWithError(errors.New("connection reset"))
	if b := <-got; !bytes.Equal(b, r.big[200:300]) {
		t.Fatal("the read after the body failed got other bytes")
	}
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("the origin was asked %d times after the body failed, want 1", n)
	}
	waitChunks(t, p, 1)
}

// body is b as a body for SeedStream's deliver; nil stays nil.
func body(b []byte) io.ReadCloser {
	if b == nil {
		return nil
	}
	return io.NopCloser(bytes.NewReader(b))
}
