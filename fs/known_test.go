package fs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/azaion/loader/resources/testbed"
)

// TestStackKnownBeforeLogin: after a logged-in session has read a resource,
// a restarted loader that has not logged in lists it with its exact
// plaintext size and mode (ls -l shows no '?'), and only opening it fails,
// with EACCES.
func TestStackKnownBeforeLogin(t *testing.T) {
	s := newStack(t, testbed.Options{})
	src := newPattern(12, 100_007)
	sum := s.upload(t, nil, "model.onnx", src)
	cacheDir := filepath.Join(t.TempDir(), "cache")

	first := s.bed.LoggedIn(t, testbed.StoreOptions{CacheDir: cacheDir})
	_, mnt1 := s.mount(t, first, Options{})
	if got, n := fileSum(t, filepath.Join(mnt1, s.folder, "model.onnx")); got != sum || n != src.size {
		t.Fatalf("logged in: %d bytes, SHA-256 differs: %v", n, got != sum)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// The restart: a loader on the same cache that has not logged in.
	store := s.bed.Store(t, testbed.StoreOptions{CacheDir: cacheDir})
	_, mnt := s.mount(t, store, Options{})
	dir := filepath.Join(mnt, s.folder)
	if got := names(t, dir); !slices.Equal(got, []string{"model.onnx"}) {
		t.Fatalf("ls before login = %q, want [model.onnx]", got)
	}
	p := filepath.Join(dir, "model.onnx")
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatalf("stat before login: %v", err)
	}
	if st.Mode != syscall.S_IFREG|0o444 || st.Size != src.size {
		t.Fatalf("stat before login: mode %o size %d, want %o %d", st.Mode, st.Size, syscall.S_IFREG|0o444, src.size)
	}
	out, err := exec.Command("ls", "-l", dir).CombinedOutput()
	if err != nil || strings.Contains(string(out), "?") || !strings.Contains(string(out), "-r--r--r--") {
		t.Fatalf("ls -l before login: %v\n%s", err, out)
	}
	for range 2 {
		_, err := os.Open(p)
		var errno syscall.Errno
		if !errors.As(err, &errno) || errno != syscall.EACCES {
			t.Fatalf("open before login: %v, want EACCES", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "never-seen.onnx")); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("stat of a name never seen, before login: %v, want EACCES", err)
	}
}
