package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/azaion/loader/resources"
)

// nameLog wraps a Store and records every name the mount asks it about.
type nameLog struct {
	Store
	mu    sync.Mutex
	names []string
}

func (n *nameLog) note(s ...string) {
	n.mu.Lock()
	n.names = append(n.names, s...)
	n.mu.Unlock()
}

func (n *nameLog) List(ctx context.Context, folder string) ([]string, error) {
	n.note(folder)
	return n.Store.List(ctx, folder)
}

func (n *nameLog) Open(ctx context.Context, folder, name string) (*resources.Resource, error) {
	n.note(folder, name)
	return n.Store.Open(ctx, folder, name)
}

// TestLookupBadNames: names PROTOCOL §2 does not allow are ENOENT in the
// mount, at the top and in a folder, and never reach the store.
func TestLookupBadNames(t *testing.T) {
	mem := newMemStore("models")
	mem.put(t, "models", "ok.bin", []byte("plain"))
	store := &nameLog{Store: mem}
	_, dir := mountT(t, store, Options{})
	bad := []string{
		".hidden", "..x", "...", "a b", "a\tb", "a\x01b", "ä.bin", "a:b", "a\\b", "a*b",
		"a'b", "a%2Fb", strings.Repeat("a", 256), "-", // "-" is allowed: a control
	}
	for _, name := range bad {
		for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, "models", name)} {
			_, err := os.Stat(p)
			if name == "-" {
				if !errors.Is(err, syscall.ENOENT) {
					t.Errorf("stat %q: %v, want ENOENT (a valid name that does not exist)", p, err)
				}
				continue
			}
			if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENAMETOOLONG) {
				t.Errorf("stat %q: %v, want ENOENT", p, err)
			}
			if _, err := os.ReadFile(p); err == nil {
				t.Errorf("read %q succeeded", p)
			}
		}
	}
	if _, err := os.ReadFile(filepath.Join(dir, "models", "ok.bin")); err != nil {
		t.Fatalf("a good name: %v", err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for _, n := range store.names {
		if !resources.ValidName(n) {
			t.Errorf("the store was asked about %q", n)
		}
	}
	if len(store.names) == 0 {
		t.Fatal("the store was asked nothing: the check proves nothing")
	}
}
