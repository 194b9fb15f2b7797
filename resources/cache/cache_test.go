package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const cs = 4096 // chunk size in tests

// memOrigin serves data and records each fetch. With a gate, every fetch
// waits for it to close.
type memOrigin struct {
	data  []byte
	gate  chan struct{}
	calls atomic.Int64
	mu    sync.Mutex
	offs  []int64
	fail  error
}

func (o *memOrigin) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	o.calls.Add(1)
	o.mu.Lock()
	o.offs = append(o.offs, off)
	o.mu.Unlock()
	if o.gate != nil {
		select {
		case <-o.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if o.fail != nil {
		return 0, o.fail
	}
	if off >= int64(len(o.data)) {
		return 0, io.EOF
	}
	n := copy(p, o.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (o *memOrigin) fetched() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := slices.Clone(o.offs)
	slices.Sort(s)
	return s
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// resource is one version: its small part, big part and Version.
type resource struct {
	small, big []byte
	v          Version
	key        Key
}

// testResourceKey stands for aes_key(resource_key).
var testResourceKey = []byte("0123456789abcdef0123456789abcdef")

func newResource(bigLen int) resource {
	r := resource{small: random(3072), big: random(bigLen)}
	r.v = Version{SmallHash: HashSmall(r.small), BigLen: int64(bigLen), ETag: `"etag-` + HashSmall(r.big)[:8] + `"`}
	r.key = NewKey(testResourceKey, r.small)
	return r
}

func open(t *testing.T, dir string) *Cache {
	t.Helper()
	c, err := Open(dir, Options{ChunkSize: cs, FetchTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Before t.TempDir's removal: no sidecar write races it.
	t.Cleanup(func() { c.Close() })
	return c
}

func part(t *testing.T, c *Cache, r resource, o Origin) *Part {
	t.Helper()
	p, err := c.Part("models", "yolo.onnx", r.v, r.key, o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll reads the whole part in odd-sized reads and checks its SHA-256.
func readAll(t *testing.T, p *Part, want []byte) {
	t.Helper()
	h := sha256.New()
	buf := make([]byte, 3*cs+17)
	for off := int64(0); off < int64(len(want)); off += int64(len(buf)) {
		n, err := p.ReadAt(context.Background(), buf, off)
		if err != nil && !(err == io.EOF && off+int64(n) == int64(len(want))) {
			t.Fatalf("read at %d: %d, %v", off, n, err)
		}
		h.Write(buf[:n])
	}
	if got, w := h.Sum(nil), sha256.Sum256(want); !bytes.Equal(got, w[:]) {
		t.Fatalf("sha256 %x, want %x", got, w)
	}
}

func readAt(t *testing.T, p *Part, off, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	got, err := p.ReadAt(context.Background(), b, off)
	if err != nil || int64(got) != n {
		t.Fatalf("read %d at %d: %d, %v", n, off, got, err)
	}
	return b
}

func TestDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "cache")
	open(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("new dir: %v, %v", fi.Mode(), err)
	}
	old := t.TempDir()
	if err := os.Chmod(old, 0o755); err != nil {
		t.Fatal(err)
	}
	c := open(t, old)
	if fi, err := os.Stat(old); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("existing dir: %v, %v", fi.Mode(), err)
	}
	if c.Dir() != old {
		t.Fatalf("Dir() = %s", c.Dir())
	}
}

func TestColdThenWarm(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(10*cs + 100)
	o := &memOrigin{data: r.big}
	p := part(t, c, r, o)
	if got := readAt(t, p, 5000, 4000); !bytes.Equal(got, r.big[5000:9000]) {
		t.Fatal("first read: wrong bytes")
	}
	if got := o.fetched(); !slices.Equal(got, []int64{cs, 2 * cs}) {
		t.Fatalf("first read fetched %v, want chunks 1 and 2", got)
	}
	if n, total := p.Present(); n != 2 || total != 11 {
		t.Fatalf("present %d of %d", n, total)
	}
	if got := readAt(t, p, 5000, 4000); !bytes.Equal(got, r.big[5000:9000]) {
		t.Fatal("second read: wrong bytes")
	}
	if o.calls.Load() != 2 {
		t.Fatalf("second read fetched: %v", o.fetched())
	}
	if s := p.Stats(); s.OriginBytes != 2*cs || s.DiskBytes != 2*cs {
		t.Fatalf("stats %+v", s)
	}
	readAll(t, p, r.big)
	if o.calls.Load() != 11 {
		t.Fatalf("%d fetches for 11 chunks", o.calls.Load())
	}
	// The last chunk is short; past the end is io.EOF.
	b := make([]byte, 300)
	if n, err := p.ReadAt(context.Background(), b, int64(len(r.big))-200); n != 200 || err != io.EOF || !bytes.Equal(b[:200], r.big[len(r.big)-200:]) {
		t.Fatalf("read across the end: %d, %v", n, err)
	}
	if n, err := p.ReadAt(context.Background(), b, int64(len(r.big))); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart: everything comes from disk, and the sidecar serves Lookup.
	c2 := open(t, dir)
	m, ok := c2.Lookup("models", "yolo.onnx")
	if !ok || m.Version != r.v || m.Present != 11 || m.Total != 11 || m.ChunkSize != cs {
		t.Fatalf("lookup: %v %+v", ok, m.Version)
	}
	o2 := &memOrigin{data: r.big, fail: errors.New("offline")}
	readAll(t, part(t, c2, r, o2), r.big)
	if o2.calls.Load() != 0 {
		t.Fatalf("warm cache fetched %v", o2.fetched())
	}
	if fi, err := os.Stat(filepath.Join(dir, "models", "yolo.onnx.big")); err != nil || fi.Size() != int64(len(r.big)) || fi.Mode().Perm() != 0o600 {
		t.Fatalf("data file: %v %v", fi, err)
	}
}

func TestConcurrentColdReaders(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(8 * cs)
	o := &memOrigin{data: r.big, gate: make(chan struct{})}
	p := part(t, c, r, o)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 5*cs)
			n, err := p.ReadAt(context.Background(), b, cs/2)
			if err != nil || n != len(b) || !bytes.Equal(b, r.big[cs/2:cs/2+5*cs]) {
				errs <- errors.New("wrong read")
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(o.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := o.fetched(); !slices.Equal(got, []int64{0, cs, 2 * cs, 3 * cs, 4 * cs, 5 * cs}) {
		t.Fatalf("fetched %v, want chunks 0..5 once each", got)
	}
}

func TestBitFlipIsRefetched(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(6 * cs)
	o := &memOrigin{data: r.big}
	p := part(t, c, r, o)
	readAll(t, p, r.big)
	data := filepath.Join(dir, "models", "yolo.onnx.big")
	flip := func(off int64) {
		f, err := os.OpenFile(data, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := []byte{0}
		f.ReadAt(b, off)
		b[0] ^= 0x10
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	flip(3*cs + 77)
	before := o.calls.Load()
	if got := readAt(t, p, 3*cs, cs); !bytes.Equal(got, r.big[3*cs:4*cs]) {
		t.Fatal("flipped chunk served")
	}
	if o.calls.Load() != before+1 {
		t.Fatalf("%d fetches for one bad chunk", o.calls.Load()-before)
	}
	readAll(t, p, r.big)
	if o.calls.Load() != before+1 {
		t.Fatal("repaired chunk fetched again")
	}
	// Across a restart too: the sidecar's CRC catches it.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	flip(5*cs + 1)
	o2 := &memOrigin{data: r.big}
	readAll(t, part(t, open(t, dir), r, o2), r.big)
	if got := o2.fetched(); !slices.Equal(got, []int64{5 * cs}) {
		t.Fatalf("after restart fetched %v, want chunk 5", got)
	}
}

func TestTruncatedDataFile(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(6*cs + 10)
	readAll(t, part(t, c, r, &memOrigin{data: r.big}), r.big)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "models", "yolo.onnx.big"), 2*cs+cs/2); err != nil {
		t.Fatal(err)
	}
	o := &memOrigin{data: r.big}
	readAll(t, part(t, open(t, dir), r, o), r.big)
	if got := o.fetched(); !slices.Equal(got, []int64{2 * cs, 3 * cs, 4 * cs, 5 * cs, 6 * cs}) {
		t.Fatalf("fetched %v, want chunks 2..6", got)
	}
}

func TestSidecarOfAnotherVersion(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	a, b := newResource(4*cs), newResource(4*cs)
	pa := part(t, c, a, &memOrigin{data: a.big})
	readAll(t, pa, a.big)
	// A new version in the same process: B takes the files, A goes on from its origin.
	ob := &memOrigin{data: b.big}
	pb := part(t, c, b, ob)
	readAll(t, pb, b.big)
	readAll(t, pa, a.big)
	if ob.calls.Load() != 4 {
		t.Fatalf("B fetched %v", ob.fetched())
	}
	if m, ok := c.Lookup("models", "yolo.onnx"); !ok || m.Version != b.v {
		t.Fatalf("lookup: %v %+v", ok, m.Version)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart, opening A again finds B's sidecar: refetched, right bytes.
	oa := &memOrigin{data: a.big}
	readAll(t, part(t, open(t, dir), a, oa), a.big)
	if oa.calls.Load() != 4 {
		t.Fatalf("A fetched %v", oa.fetched())
	}
}

func TestCrashBeforeSidecarWrite(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(8 * cs)
	p := part(t, c, r, &memOrigin{data: r.big})
	readAt(t, p, 0, 3*cs) // recorded in memory, not yet in the sidecar
	// A second process on the same directory sees only what the sidecar says.
	c2 := open(t, dir)
	m, ok := c2.Lookup("models", "yolo.onnx")
	if !ok || m.Present != 0 {
		t.Fatalf("lookup after crash: %v, present %d", ok, m.Present)
	}
	// Garbage where the chunks were: they are not recorded, so not served.
	f, err := os.OpenFile(filepath.Join(dir, "models", "yolo.onnx.big"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(random(3*cs), 0)
	f.Close()
	o := &memOrigin{data: r.big}
	readAll(t, part(t, c2, r, o), r.big)
	if o.calls.Load() != 8 {
		t.Fatalf("fetched %v", o.fetched())
	}
}

func TestSidecarWrittenWithinBound(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(8 * cs)
	readAt(t, part(t, c, r, &memOrigin{data: r.big}), 0, 2*cs)
	deadline := time.Now().Add(5 * time.Second)
	for {
		sc, err := readSidecar(c.root, "models/yolo.onnx.big.meta")
		if err == nil && len(sc.Chunks) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sidecar not written within %v: %v", persistDelay, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCancelledReaderReturnsWhileFetchGoesOn(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(2 * cs)
	o := &memOrigin{data: r.big, gate: make(chan struct{})}
	p := part(t, c, r, o)
	ctx, cancel := context.WithCancel(context.Background())
	aDone := make(chan error, 1)
	go func() {
		_, err := p.ReadAt(ctx, make([]byte, 10), 0)
		aDone <- err
	}()
	bDone := make(chan []byte, 1)
	go func() {
		b := make([]byte, 10)
		if _, err := p.ReadAt(context.Background(), b, 5); err != nil {
			t.Error(err)
		}
		bDone <- b
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-aDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled reader: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("cancelled reader still waiting")
	}
	close(o.gate)
	select {
	case b := <-bDone:
		if !bytes.Equal(b, r.big[5:15]) {
			t.Fatal("other reader: wrong bytes")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("other reader never got its bytes")
	}
	if o.calls.Load() != 1 {
		t.Fatalf("%d fetches", o.calls.Load())
	}
	if n, _ := p.Present(); n != 1 {
		t.Fatalf("shared fetch not stored: %d chunks present", n)
	}
}

func TestDiskErrorStillServes(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(3 * cs)
	o := &memOrigin{data: r.big}
	p := part(t, c, r, o)
	// The data file becomes something no chunk can be written to.
	data := filepath.Join(dir, "models", "yolo.onnx.big")
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	readAll(t, p, r.big)
	readAll(t, p, r.big)
	if n, _ := p.Present(); n != 0 {
		t.Fatalf("%d chunks recorded that were never written", n)
	}
	if o.calls.Load() != 6 {
		t.Fatalf("%d fetches, want 6", o.calls.Load())
	}
}

func TestOriginFailure(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(3 * cs)
	boom := errors.New("cdn down")
	p := part(t, c, r, &memOrigin{data: r.big, fail: boom})
	if _, err := p.ReadAt(context.Background(), make([]byte, 10), 0); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	short := &memOrigin{data: r.big[:cs+10]}
	p = part(t, c, r, short)
	if n, err := p.ReadAt(context.Background(), make([]byte, 2*cs), 0); n != cs || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short origin: %d, %v", n, err)
	}
	if n, _ := p.Present(); n != 1 {
		t.Fatalf("present %d, want only chunk 0", n)
	}
}

func TestWriter(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	old := newResource(2 * cs)
	pOld := part(t, c, old, &memOrigin{data: old.big})
	readAll(t, pOld, old.big)

	r := newResource(5*cs + 3)
	w, err := c.Writer("models", "yolo.onnx", r.key)
	if err != nil {
		t.Fatal(err)
	}
	for rest := r.big; len(rest) > 0; {
		k := min(len(rest), 1+len(rest)%1777)
		if n, err := w.Write(rest[:k]); n != k || err != nil {
			t.Fatal(n, err)
		}
		rest = rest[k:]
	}
	if err := w.Commit(r.v); err != nil {
		t.Fatal(err)
	}
	if m, ok := c.Lookup("models", "yolo.onnx"); !ok || m.Version != r.v || m.Present != 6 || m.Total != 6 {
		t.Fatalf("lookup after commit: %v %+v", ok, m)
	}
	o := &memOrigin{fail: errors.New("offline")}
	readAll(t, part(t, c, r, o), r.big)
	if o.calls.Load() != 0 {
		t.Fatal("committed entry fetched from origin")
	}
	readAll(t, pOld, old.big) // the old version's reader goes on from its origin

	// Abort leaves nothing; a commit that does not add up leaves nothing.
	w, err = c.Writer("other", "x", r.key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abc"))
	w.Abort()
	w, err = c.Writer("other", "y", r.key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abc"))
	if err := w.Commit(Version{SmallHash: HashSmall(nil), BigLen: 4}); err == nil {
		t.Fatal("commit of 3 bytes as 4")
	}
	if files, _ := os.ReadDir(filepath.Join(dir, "other")); len(files) != 0 {
		t.Fatalf("left behind: %v", files)
	}
	got, err := c.List()
	if err != nil || len(got) != 1 || !slices.Equal(got["models"], []string{"yolo.onnx"}) {
		t.Fatalf("list: %v, %v", got, err)
	}
}

func TestListRemoveNames(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	r := newResource(cs)
	for _, fn := range [][2]string{{"b", "y"}, {"a", "x"}, {"b", "x"}} {
		if _, err := c.Part(fn[0], fn[1], r.v, r.key, &memOrigin{data: r.big}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.List()
	if err != nil || len(got) != 2 || !slices.Equal(got["a"], []string{"x"}) || !slices.Equal(got["b"], []string{"x", "y"}) {
		t.Fatalf("list: %v, %v", got, err)
	}
	if err := c.Remove("b", "x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup("b", "x"); ok {
		t.Fatal("lookup after remove")
	}
	if got, _ := c.List(); !slices.Equal(got["b"], []string{"y"}) {
		t.Fatalf("list after remove: %v", got)
	}
	for _, fn := range [][2]string{{"..", "x"}, {"a", "../x"}, {"a/b", "x"}, {"a", ".x"}, {"a", "x\x00"}, {"", "x"}} {
		if _, err := c.Part(fn[0], fn[1], r.v, r.key, &memOrigin{}); !errors.Is(err, ErrBadName) {
			t.Errorf("part %q/%q: %v", fn[0], fn[1], err)
		}
		if _, err := c.Writer(fn[0], fn[1], r.key); !errors.Is(err, ErrBadName) {
			t.Errorf("writer %q/%q: %v", fn[0], fn[1], err)
		}
		if err := c.Remove(fn[0], fn[1]); !errors.Is(err, ErrBadName) {
			t.Errorf("remove %q/%q: %v", fn[0], fn[1], err)
		}
	}
	if _, err := c.Part("a", "x", r.v, Key{}, &memOrigin{}); err == nil {
		t.Fatal("part without a chunk key")
	}
}

func TestLargeReadFetchesInParallel(t *testing.T) {
	c := open(t, t.TempDir())
	r := newResource(6 * cs)
	o := &memOrigin{data: r.big, gate: make(chan struct{})}
	p := part(t, c, r, o)
	done := make(chan error, 1)
	b := make([]byte, 5*cs)
	go func() {
		_, err := p.ReadAt(context.Background(), b, cs/2)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for o.calls.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := o.calls.Load(); n != 5 {
		t.Fatalf("%d fetches in flight for a read over 6 chunks, want 5 (the first and %d ahead)", n, fetchAhead)
	}
	close(o.gate)
	if err := <-done; err != nil || !bytes.Equal(b, r.big[cs/2:cs/2+5*cs]) {
		t.Fatalf("read: %v", err)
	}
	readAll(t, p, r.big)
	if got := o.fetched(); !slices.Equal(got, []int64{0, cs, 2 * cs, 3 * cs, 4 * cs, 5 * cs}) {
		t.Fatalf("fetched %v, want each chunk once", got)
	}
}
