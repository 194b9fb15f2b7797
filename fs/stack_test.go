package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/testbed"
)

// The full-stack tests mount a real *resources.Store over the reference
// Resource API and a real MinIO (testbed), through a real kernel mount.

// stack is one test's full stack: the bed, a folder of its own, and a
// loader's Store that uploads. Mounts use other Stores with empty caches,
// so that their reads are cold.
type stack struct {
	bed    *testbed.Bed
	folder string
	up     *resources.Store
}

func newStack(t *testing.T, opt testbed.Options) *stack {
	t.Helper()
	needFUSE(t)
	bed := testbed.New(t, opt)
	return &stack{bed: bed, folder: bed.NewFolder(t), up: bed.LoggedIn(t, testbed.StoreOptions{})}
}

// upload stores r's bytes as name through store (the uploading one when
// nil) and returns their SHA-256.
func (s *stack) upload(t testing.TB, store *resources.Store, name string, r io.Reader) [32]byte {
	t.Helper()
	if store == nil {
		store = s.up
	}
	h := sha256.New()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := store.Upload(ctx, s.folder, name, io.TeeReader(r, h)); err != nil {
		t.Fatalf("upload %s/%s: %v", s.folder, name, err)
	}
	return [32]byte(h.Sum(nil))
}

// mount mounts store and wires it as serve.go does, so that the Store's
// own uploads invalidate the kernel's view of the file.
func (s *stack) mount(t testing.TB, store *resources.Store, opt Options) (*Server, string) {
	t.Helper()
	srv, dir := mountT(t, store, opt)
	store.Watch(srv.Invalidate)
	return srv, dir
}

// fresh is a new logged-in Store with an empty cache, mounted; it returns
// the path of the stack's folder under the mount.
func (s *stack) fresh(t testing.TB, opt Options) (*resources.Store, string) {
	t.Helper()
	store := s.bed.LoggedIn(t, testbed.StoreOptions{})
	_, dir := s.mount(t, store, opt)
	return store, filepath.Join(dir, s.folder)
}

// pattern is size bytes of deterministic pseudo-random content, any range
// of which can be made on its own, so that 100 MB resources need not be
// held in memory: a random table of patternPeriod bytes, repeated. The
// period is prime, so no misplaced block, page or chunk (all powers of
// two) can be mistaken for the right one.
type pattern struct {
	table []byte
	size  int64
	pos   int64 // of Read
}

const patternPeriod = 1048573

func newPattern(seed uint64, size int64) *pattern {
	table := make([]byte, patternPeriod)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	r.Read(table)
	return &pattern{table: table, size: size}
}

func (p *pattern) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-off))
	for i := 0; i < n; {
		i += copy(b[i:n], p.table[(off+int64(i))%patternPeriod:])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (p *pattern) Read(b []byte) (int, error) {
	n, err := p.ReadAt(b, p.pos)
	p.pos += int64(n)
	return n, err
}

// bytes is the whole content.
func (p *pattern) bytes() []byte {
	b := make([]byte, p.size)
	p.ReadAt(b, 0)
	return b
}

// fileSum reads path whole and returns its SHA-256 and length.
func fileSum(t testing.TB, path string) ([32]byte, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return [32]byte(h.Sum(nil)), n
}

// statSize is path's st_size.
func statSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fi.Size()
}

// stackSizes are the core issue's sizes: empty, within a block, around
// block boundaries, around the 3072-byte small-part cap (10207, 10208 and
// 10224 bytes of plaintext make 10224, 10240 and 10256 of ciphertext), a
// few cache chunks, and over 100 MB (odd, so that no boundary lines up).
var stackSizes = []int64{0, 1, 15, 16, 17, 10207, 10208, 10224, 5 << 20, 100<<20 + 4097}

// TestStackWholeFiles uploads a resource of every size and reads each
// through the mount of a fresh loader: listing, st_size and SHA-256 match.
// First, another fresh loader reads 4 KiB in the middle of the largest,
// which must not download it.
func TestStackWholeFiles(t *testing.T) {
	s := newStack(t, testbed.Options{ProxyCDN: true})
	want := map[string][32]byte{}
	var wantNames []string
	for i, n := range stackSizes {
		name := fmt.Sprintf("size-%d.bin", n)
		want[name] = s.upload(t, nil, name, newPattern(uint64(i), n))
		wantNames = append(wantNames, name)
	}
	largest := slices.Max(stackSizes)
	t.Run("cold 4 KiB read", func(t *testing.T) {
		coldRead(t, s, fmt.Sprintf("size-%d.bin", largest), newPattern(uint64(len(stackSizes)-1), largest))
	})

	_, dir := s.fresh(t, Options{})
	slices.Sort(wantNames)
	if got := names(t, dir); !slices.Equal(got, wantNames) {
		t.Fatalf("ls %s = %q, want %q", s.folder, got, wantNames)
	}
	for i, n := range stackSizes {
		name := fmt.Sprintf("size-%d.bin", n)
		p := filepath.Join(dir, name)
		if got := statSize(t, p); got != n {
			t.Errorf("%s: st_size %d, want %d", name, got, n)
		}
		sum, got := fileSum(t, p)
		if got != n || sum != want[name] {
			t.Errorf("%s (#%d): read %d bytes, SHA-256 %x; want %d bytes, %x", name, i, got, sum, n, want[name])
		}
	}
}

// coldRead reads 4 KiB in the middle of a large resource through the mount
// of a fresh loader, and counts the bytes that come from the CDN.
func coldRead(t *testing.T, s *stack, name string, src *pattern) {
	_, dir := s.fresh(t, Options{})
	before := s.bed.CDNProxy.BytesFromUpstream()
	f, err := os.Open(filepath.Join(dir, name)) // lookup and open: the tail's 32 bytes and the first chunk
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := src.size/2 + 777
	buf, want := make([]byte, 4096), make([]byte, 4096)
	if n, err := f.ReadAt(buf, off); n != len(buf) || err != nil {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	src.ReadAt(want, off)
	if !bytes.Equal(buf, want) {
		t.Fatal("the 4 KiB differ from the original")
	}
	got := s.bed.CDNProxy.BytesFromUpstream() - before
	// The kernel reads ahead at most max_readahead (1 MiB asked for) around
	// the 4 KiB; the cache fetches whole 1 MiB chunks, and those bytes plus
	// the CBC block before them span at most 3 chunks: 3 MiB. The open
	// fetches the first chunk (1 MiB) beside the tail (32 bytes), so that a
	// read at the start waits for no GET; add HTTP headers (well under
	// 1 MiB). Anything near the file's size would mean the model is being
	// downloaded.
	const bound = 5 << 20
	t.Logf("a cold 4 KiB read of a %d-byte file fetched %d bytes from the CDN", src.size, got)
	if got > bound {
		t.Errorf("a cold 4 KiB read fetched %d bytes from the CDN, want at most %d", got, bound)
	}
}

// TestStackRandomPread makes 1 000 preads of a cold resource at random
// offsets and lengths, a third of them on a block, page, split or cache
// chunk boundary (±1), some past the end, half with O_DIRECT (each one a
// FUSE read at that exact offset); then maps the file.
func TestStackRandomPread(t *testing.T) {
	s := newStack(t, testbed.Options{})
	const size = 3<<20 + 1234
	src := newPattern(42, size)
	s.upload(t, nil, "model.onnx", src)
	plain := src.bytes()
	_, dir := s.fresh(t, Options{})
	p := filepath.Join(dir, "model.onnx")

	cached, err := syscall.Open(p, syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(cached)
	direct, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(direct)

	// Plaintext offsets where something changes underneath: the small part
	// ends at ciphertext 3072 (plaintext 3056, the IV being 16 bytes), and
	// cache chunk k of the big part starts at ciphertext 3072 + k MiB.
	var edges []int64
	for k := int64(0); 3056+k<<20 <= size; k++ {
		edges = append(edges, 3056+k<<20)
	}
	edges = append(edges, size-16, size)
	rng := rand.New(rand.NewPCG(3, 1000))
	for i := range 1000 {
		var off int64
		switch i % 6 {
		case 0:
			off = edges[rng.IntN(len(edges))] + rng.Int64N(33) - 16
		case 1:
			unit := []int64{16, 4096, 131072}[rng.IntN(3)]
			off = rng.Int64N(size/unit+2)*unit + rng.Int64N(3) - 1
		case 2:
			off = size + rng.Int64N(1<<20) - 4096 // near and past the end
		default:
			off = rng.Int64N(size)
		}
		off = max(off, 0)
		n := rng.IntN(16 << 10)
		if i%10 == 0 {
			n = rng.IntN(256<<10 + 64) // over several FUSE requests
		}
		fd := cached
		if i%2 == 1 {
			fd = direct
		}
		buf := make([]byte, n)
		got, err := preadRetry(fd, buf, off)
		if err != nil {
			t.Fatalf("pread(%d bytes at %d, direct=%v): %v", n, off, fd == direct, err)
		}
		exp := plain[min(off, size):min(off+int64(n), size)]
		if got != len(exp) || !bytes.Equal(buf[:got], exp) {
			t.Fatalf("pread(%d bytes at %d, direct=%v) = %d bytes, want %d", n, off, fd == direct, got, len(exp))
		}
	}

	if mmapSum(t, p) != sha256.Sum256(plain) {
		t.Errorf("mmap: bytes differ from the original")
	}
}

// TestStackSQLite has a real program read through the mount: sqlite3
// checks a database stored as a resource, and cmp compares it.
func TestStackSQLite(t *testing.T) {
	s := newStack(t, testbed.Options{})
	for _, tool := range []string{"sqlite3", "cmp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err) // .ci/deps installs it
		}
	}
	orig := filepath.Join(t.TempDir(), "tracks.db")
	run(t, "sqlite3", orig, `CREATE TABLE track(id INTEGER PRIMARY KEY, label TEXT, score REAL, box BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000)
INSERT INTO track SELECT x, 'object-' || x, x * 0.25, randomblob(64 + x % 200) FROM c;
CREATE INDEX track_label ON track(label);`)
	f, err := os.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.upload(t, nil, "tracks.db", f)
	_, dir := s.fresh(t, Options{})
	p := filepath.Join(dir, "tracks.db")
	uri := "file:" + p + "?immutable=1"
	if out := run(t, "sqlite3", uri, "PRAGMA integrity_check"); out != "ok\n" {
		t.Errorf("integrity_check through the mount: %q, want \"ok\\n\"", out)
	}
	if out := run(t, "sqlite3", uri, "SELECT count(*), sum(length(box)) FROM track WHERE label LIKE 'object-%'"); out != run(t, "sqlite3", orig, "SELECT count(*), sum(length(box)) FROM track WHERE label LIKE 'object-%'") {
		t.Errorf("query through the mount: %q differs from the original's", out)
	}
	run(t, "cmp", orig, p)
}

// run runs a program (bounded) and returns its standard output; it fails
// the test when the program fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// TestStackConcurrentColdReaders has 16 readers read one cold file at
// once, from different starting points, half with O_DIRECT (so the page
// cache cannot merge them): every one gets the right bytes, and the CDN
// sends the big part about once, not 16 times.
func TestStackConcurrentColdReaders(t *testing.T) {
	s := newStack(t, testbed.Options{ProxyCDN: true})
	const size = 4<<20 + 3
	src := newPattern(16, size)
	sum := s.upload(t, nil, "shared.onnx", src)
	big := s.bed.BigObject(t, s.folder, "shared.onnx")
	_, dir := s.fresh(t, Options{})
	p := filepath.Join(dir, "shared.onnx")
	statSize(t, p) // the lookup's HEAD and size probe are not what is measured

	before := s.bed.CDNProxy.BytesFromUpstream()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	within(t, 2*time.Minute, "16 readers", func() {
		for i := range 16 {
			wg.Go(func() { errs <- readRotated(p, i, sum) })
		}
		wg.Wait()
	})
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got := s.bed.CDNProxy.BytesFromUpstream() - before
	// Each 1 MiB chunk is fetched once (5 ranged GETs); allow 10% and the
	// HTTP headers of those GETs.
	limit := big + big/10 + 256<<10
	t.Logf("16 readers of a %d-byte big part: %d bytes from the CDN", big, got)
	if got > limit {
		t.Errorf("16 readers: %d bytes from the CDN for a %d-byte big part, want at most %d", got, big, limit)
	}
}

// readRotated reads the file whole, reader i starting at i/16 of it and
// wrapping around, and checks the SHA-256 of the bytes put back in order.
func readRotated(p string, i int, want [32]byte) error {
	flags := os.O_RDONLY
	if i%2 == 1 {
		flags |= syscall.O_DIRECT
	}
	f, err := os.OpenFile(p, flags, 0)
	if err != nil {
		return fmt.Errorf("reader %d: %w", i, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reader %d: %w", i, err)
	}
	size := fi.Size()
	start := size * int64(i) / 16 &^ 4095 // O_DIRECT wants aligned offsets
	data := make([]byte, size)
	for _, r := range [][2]int64{{start, size}, {0, start}} {
		if _, err := io.ReadFull(io.NewSectionReader(f, r[0], r[1]-r[0]), data[r[0]:r[1]]); err != nil {
			return fmt.Errorf("reader %d: read [%d, %d): %w", i, r[0], r[1], err)
		}
	}
	if sha256.Sum256(data) != want {
		return fmt.Errorf("reader %d: SHA-256 differs", i)
	}
	return nil
}
