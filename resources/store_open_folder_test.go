package resources_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/azaion/loader/resources/testbed"
)

// TestHasFolder: a configured folder, or one the cache holds, is known
// without a word to the CDN; another is known when the CDN has it; a
// folder nobody has, or a bad name, is not.
func TestHasFolder(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	remote, cachedF := bed.NewFolder(t), bed.NewFolder(t)
	up := bed.LoggedIn(t, testbed.StoreOptions{})
	ctx := context.Background()
	for _, f := range []string{remote, cachedF} {
		if _, err := up.Upload(ctx, f, "m.bin", bytes.NewReader(make([]byte, 5000))); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	warm := bed.LoggedIn(t, testbed.StoreOptions{CacheDir: dir})
	if _, err := warm.Open(ctx, cachedF, "m.bin"); err != nil {
		t.Fatal(err)
	}
	s := bed.LoggedIn(t, testbed.StoreOptions{CacheDir: dir, Folders: []string{"configured"}})
	before := bed.CDNProxy.BytesFromUpstream()
	for _, f := range []string{"configured", cachedF} {
		if ok, err := s.HasFolder(ctx, f); !ok || err != nil {
			t.Fatalf("HasFolder(%q): %v, %v; want true", f, ok, err)
		}
	}
	if d := bed.CDNProxy.BytesFromUpstream() - before; d != 0 {
		t.Fatalf("a configured or cached folder cost %d bytes from the CDN", d)
	}
	if ok, err := s.HasFolder(ctx, remote); !ok || err != nil {
		t.Fatalf("HasFolder of a folder on the CDN: %v, %v; want true", ok, err)
	}
	if bed.CDNProxy.BytesFromUpstream() == before {
		t.Fatal("a folder only the CDN has was answered without the CDN")
	}
	for _, f := range []string{"nobody-has-this", "Bad/Name", ""} {
		if ok, err := s.HasFolder(ctx, f); ok || err != nil {
			t.Fatalf("HasFolder(%q): %v, %v; want false", f, ok, err)
		}
	}
}
