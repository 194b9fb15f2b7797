package fs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources/testbed"
)

// TestStackWritesAreEROFS tries every write-type operation on a full-stack
// mount: each fails with EROFS, and nothing changes anywhere — not the CDN
// bucket, not the Resource API's files, not the loader's cache, not the bytes.
func TestStackWritesAreEROFS(t *testing.T) {
	s := newStack(t, testbed.Options{})
	src := newPattern(5, 2<<20+17)
	sum := s.upload(t, nil, "model.onnx", src)
	store, dir := s.fresh(t, Options{})
	file := filepath.Join(dir, "model.onnx")
	if got, _ := fileSum(t, file); got != sum {
		t.Fatal("bytes differ before the writes")
	}
	before := s.snapshot(t, store.CacheDir())

	for name, op := range writeOps(filepath.Dir(dir), dir, file, dir) {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: err = %v, want EROFS", name, err)
		}
	}

	if after := s.snapshot(t, store.CacheDir()); !maps.Equal(before, after) {
		t.Errorf("something changed:\nbefore %v\nafter  %v", before, after)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"model.onnx"}) {
		t.Errorf("ls after the writes = %q", got)
	}
	if got, n := fileSum(t, file); got != sum || n != src.size {
		t.Errorf("after the writes: %d bytes, SHA-256 differs: %v", n, got != sum)
	}
}

// snapshot describes everything a write could change: the CDN objects of
// the folder (key, size, ETag), the Resource API's files of the folder, and
// the cache's big parts (their sidecars change when they record use, so
// only their names count).
func (s *stack) snapshot(t testing.TB, cacheDir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	list, err := s.bed.MinIO.Root().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.folder})
	if err != nil {
		t.Fatalf("list bucket %s: %v", s.folder, err)
	}
	for _, o := range list.Contents {
		out["cdn:"+*o.Key] = fmt.Sprintf("%d bytes, ETag %s", *o.Size, *o.ETag)
	}
	for name, root := range map[string]string{"api": filepath.Join(s.bed.DataDir, s.folder), "cache": cacheDir} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if filepath.Ext(p) == ".meta" {
				out[name+":"+rel] = "present"
				return nil
			}
			data, err := os.ReadFile(p)
			out[name+":"+rel] = fmt.Sprintf("%d bytes, SHA-256 %x", len(data), sha256.Sum256(data))
			return err
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	return out
}

// TestStackReupload replaces a mounted resource: through the mounted
// loader's own Store (which tells the mount at once), then through another
// loader (seen on the first lookup after the entry timeout). Each new open
// sees the new size and bytes; the last version has the same size as the
// one before, so stale pages in the kernel would show.
func TestStackReupload(t *testing.T) {
	s := newStack(t, testbed.Options{})
	// Long enough that the re-upload through the mounted loader is over
	// before the kernel would revalidate by itself.
	const entry = 3 * time.Second
	v1, v2, v3 := newPattern(1, 1<<20+5), newPattern(2, 3<<20+77), newPattern(3, 3<<20+77)
	s.upload(t, nil, "model.onnx", v1)
	store, dir := s.fresh(t, Options{EntryTimeout: entry})
	p := filepath.Join(dir, "model.onnx")
	check := func(what string, want *pattern) {
		t.Helper()
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want.bytes()) {
			t.Fatalf("%s: read %d bytes (%v), want the %d new ones", what, len(got), err, want.size)
		}
	}
	check("v1", v1)

	s.upload(t, store, "model.onnx", v2) // through the mounted loader: no waiting
	if got := statSize(t, p); got != v2.size {
		t.Fatalf("st_size after the re-upload through the mounted loader: %d, want %d", got, v2.size)
	}
	check("v2 through the mounted loader", v2)

	s.upload(t, nil, "model.onnx", v3) // through another loader
	deadline := time.Now().Add(entry + 10*time.Second)
	for {
		got, err := os.ReadFile(p)
		if err == nil && bytes.Equal(got, v3.bytes()) {
			break
		}
		if err == nil && !bytes.Equal(got, v2.bytes()) {
			t.Fatalf("v3 through another loader: read bytes of neither v2 nor v3")
		}
		if time.Now().After(deadline) {
			t.Fatalf("v3 through another loader not seen within %v (err %v)", entry+10*time.Second, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	check("v3 through another loader", v3)
}

// TestStackBeforeLogin mounts a loader that has not logged in: the
// configured folder shows, a file in it fails with EACCES and one log line
// says how to log in; after Login the same mount opens it.
func TestStackBeforeLogin(t *testing.T) {
	s := newStack(t, testbed.Options{})
	src := newPattern(9, 100_000)
	sum := s.upload(t, nil, "model.onnx", src)
	log := &logBuf{}
	store := s.bed.Store(t, testbed.StoreOptions{Folders: []string{s.folder}})
	_, mnt := s.mount(t, store, Options{Logger: log.logger()})
	if got := names(t, mnt); !slices.Contains(got, s.folder) {
		t.Fatalf("ls / before login = %q, want %s in it", got, s.folder)
	}
	p := filepath.Join(mnt, s.folder, "model.onnx")
	for range 2 {
		if _, err := os.Open(p); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("open before login: %v, want EACCES", err)
		}
	}
	if n := log.count("POST /login"); n != 1 {
		t.Errorf("%d log lines say how to log in, want 1:\n%s", n, log)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Login(ctx, s.bed.Email, s.bed.Password); err != nil {
		t.Fatal(err)
	}
	if got, n := fileSum(t, p); got != sum || n != src.size {
		t.Errorf("after login: %d bytes, SHA-256 differs: %v", n, got != sum)
	}
}

// TestStackOldHandleKeepsItsVersion replaces a resource, from another
// loader, while a handle and a mapping of the old version are open: each
// keeps the old version whole and its size (or, for the handle, fails with
// EIO once the old version is gone from everywhere), while a new open reads
// the new version whole. With one inode for both, they shared one page
// cache and one size, and the old handle read a mix of the two.
func TestStackOldHandleKeepsItsVersion(t *testing.T) {
	s := newStack(t, testbed.Options{})
	const entry = 500 * time.Millisecond
	v1, v2 := newPattern(21, 3<<20+123), newPattern(22, 5<<20+7)
	s.upload(t, nil, "m.bin", v1)
	_, dir := s.fresh(t, Options{EntryTimeout: entry})
	p := filepath.Join(dir, "m.bin")

	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// The mapping lives in a child process: a page fault on the mount in
	// the process that serves it can deadlock (see TestHelperProcess).
	v1sum := fmt.Sprintf("%x", sha256.Sum256(v1.bytes()))
	mapper := helper(t, "mmap-hold", p)
	toMapper, err := mapper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	fromMapper, err := mapper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := mapper.Start(); err != nil {
		t.Fatal(err)
	}
	defer mapper.Process.Kill()
	mapped := bufio.NewScanner(fromMapper)
	mapLine := func() string {
		var line string
		within(t, 30*time.Second, "the mapping's hash", func() {
			mapped.Scan()
			line = mapped.Text()
		})
		return line
	}
	// v1 whole through the mapping (its pages now in the kernel's cache),
	// and half of it through the handle, before v2 exists.
	if got := mapLine(); got != v1sum {
		t.Fatalf("the mapping does not hold v1: %q", got)
	}
	half := make([]byte, v1.size/2)
	if _, err := io.ReadFull(old, half); err != nil || !bytes.Equal(half, v1.bytes()[:len(half)]) {
		t.Fatalf("first half through the handle: %v", err)
	}

	s.upload(t, nil, "m.bin", v2) // another loader: seen after the entry timeout
	deadline := time.Now().Add(entry + 10*time.Second)
	for {
		got, err := os.ReadFile(p)
		if err == nil && bytes.Equal(got, v2.bytes()) {
			break
		}
		if err == nil && !bytes.Equal(got, v1.bytes()) {
			t.Fatalf("a new open read %d bytes of neither version", len(got))
		}
		if time.Now().After(deadline) {
			t.Fatalf("v2 not seen within %v (err %v)", entry+10*time.Second, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The old handle goes on with v1, in v1's size.
	if fi, err := old.Stat(); err != nil || fi.Size() != v1.size {
		t.Fatalf("fstat of the old handle: %v; want v1's size %d", err, v1.size)
	}
	rest, err := io.ReadAll(old)
	whole := append(half, rest...)
	switch {
	case err != nil && !errors.Is(err, syscall.EIO):
		t.Fatalf("the old handle's rest: %v, want v1's bytes or EIO", err)
	case err != nil && !bytes.Equal(whole, v1.bytes()[:min(len(whole), len(v1.bytes()))]):
		t.Fatalf("the old handle read %d bytes that are not v1's before EIO", len(whole))
	case err == nil && !bytes.Equal(whole, v1.bytes()):
		t.Fatalf("the old handle read %d bytes that are not v1 (%d bytes)", len(whole), v1.size)
	}
	toMapper.Write([]byte("again\n"))
	if got := mapLine(); got != v1sum {
		t.Fatalf("the mapping of v1 after v2 was opened: %q, want v1's hash", got)
	}
	toMapper.Close()
	mapper.Wait()
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, v2.bytes()) {
		t.Fatalf("a new open after the old handle: %d bytes (%v), want v2", len(got), err)
	}
}
