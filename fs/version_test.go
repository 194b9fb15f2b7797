package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNewVersion: when the store has a new version, a new open sees its
// size and bytes, not the kernel's cached pages of the old one — after
// Invalidate at once, and without it after the entry timeout.
func TestNewVersion(t *testing.T) {
	s, _ := fixture(t)
	const entry = 200 * time.Millisecond
	m, mnt := mountT(t, s, Options{EntryTimeout: entry})
	p := filepath.Join(mnt, "models", "swap")
	check := func(step string, want []byte) {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil || st.Size() != int64(len(want)) {
			t.Fatalf("%s: stat: size %v, %v; want %d", step, st, err, len(want))
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes (%v), want the %d bytes of this version", step, len(got), err, len(want))
		}
	}
	v1 := plaintext(100, 10207)
	s.put(t, "models", "swap", v1)
	check("v1", v1)
	// An open fd keeps the kernel's pages in use while versions change.
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	v2 := plaintext(101, 20000) // another size
	s.put(t, "models", "swap", v2)
	m.Invalidate("models", "swap")
	check("v2 after Invalidate", v2)

	v3 := plaintext(102, 20000) // the same size: only the version tells
	s.put(t, "models", "swap", v3)
	m.Invalidate("models", "swap")
	check("v3 after Invalidate", v3)

	v4 := plaintext(103, 20000)
	s.put(t, "models", "swap", v4)
	time.Sleep(entry + 100*time.Millisecond)
	check("v4 after the entry timeout", v4)

	v5 := plaintext(104, 4000) // smaller
	s.put(t, "models", "swap", v5)
	time.Sleep(entry + 100*time.Millisecond)
	check("v5 after the entry timeout", v5)

	// A handle of v5 that reads after v6 arrives fills the kernel's pages
	// with v5 (here after fadvise dropped them); a new open must not keep them.
	h5, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer h5.Close()
	v6 := plaintext(105, 4000)
	s.put(t, "models", "swap", v6)
	m.Invalidate("models", "swap")
	check("v6 after Invalidate", v6)
	if err := unix.Fadvise(int(h5.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if got, err := h5.ReadAt(make([]byte, 4000), 0); err != nil || got != 4000 {
		t.Fatalf("read the old handle: %d, %v", got, err)
	}
	check("v6 after an old handle read", v6)
}

// TestUnchangedVersionKeepsCache: reopening an unchanged version reads the
// kernel's pages (FOPEN_KEEP_CACHE), not the store, though open revalidates.
func TestUnchangedVersionKeepsCache(t *testing.T) {
	s, want := fixture(t)
	const entry = 100 * time.Millisecond
	_, mnt := mountT(t, s, Options{EntryTimeout: entry})
	p := filepath.Join(mnt, "models", "size-10224")
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want["size-10224"]) {
		t.Fatalf("first read: %v", err)
	}
	if s.plainReads.Load() == 0 {
		t.Fatal("the first read did not reach the store")
	}
	time.Sleep(entry + 50*time.Millisecond)
	opens, reads := s.opens.Load(), s.plainReads.Load()
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want["size-10224"]) {
		t.Fatalf("second read: %v", err)
	}
	if s.opens.Load() == opens {
		t.Error("the second open did not revalidate with the store")
	}
	if n := s.plainReads.Load() - reads; n != 0 {
		t.Errorf("the second read of an unchanged version made %d store reads, want 0 (kernel cache)", n)
	}
}
