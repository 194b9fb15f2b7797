package resources_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// readWhole opens folder/name through s and reads it whole, within 20 s.
func readWhole(s *resources.Store, folder, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := s.Open(ctx, folder, name)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.NewSectionReader(res.At(ctx), 0, res.Size()))
}

// TestSmallPartHeldInMemoryOnly walks the offline cases of PROTOCOL §2
// with MinIO and the reference Resource API behind fault proxies: a
// version opened in this process opens again with the API down (the CDN
// up with that version, or down too); with the API down and a newer
// version on the CDN the open fails, never mixing the two; after a
// restart, or a logout, an open with the API down fails. After every step
// no 32-byte window of a small part is in any file under the cache
// directory or the temp directory.
func TestSmallPartHeldInMemoryOnly(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true, ProxyAPI: true})
	// From here on, everything this process writes to a temp dir goes to
	// one of its own (other processes' mounts under /tmp are not ours to
	// walk; the shared MinIO, started above, keeps its own).
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	folder := bed.NewFolder(t)
	up := bed.LoggedIn(t, testbed.StoreOptions{})
	dir := filepath.Join(t.TempDir(), "cache")
	s := bed.LoggedIn(t, testbed.StoreOptions{CacheDir: dir, Timeout: 2 * time.Second})
	v1 := uploadRandom(t, up, folder, "m.bin", 3<<20+123)
	smalls := [][]byte{bed.SmallPart(t, folder, "m.bin")}
	noSmallAtRest := func(step string) {
		t.Helper()
		for _, root := range []string{dir, tmp} {
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if d.IsDir() && path == bed.DataDir { // the Resource API's own store
					return filepath.SkipDir
				}
				if !d.Type().IsRegular() {
					return nil
				}
				b, err := os.ReadFile(path)
				for _, small := range smalls {
					if err == nil && bytes.Contains(b, small[len(small)-48:len(small)-16]) {
						t.Errorf("%s: a small part at rest in %s", step, path)
					}
				}
				return nil
			})
		}
	}
	check := func(step string, got []byte, err error, want []byte) {
		t.Helper()
		if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
			t.Fatalf("%s: %d bytes, %v, right %v", step, len(got), err, bytes.Equal(got, want))
		}
		noSmallAtRest(step)
	}
	noSmallAtRest("upload")

	got, err := readWhole(s, folder, "m.bin")
	check("open and read", got, err, v1)

	bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	got, err = readWhole(s, folder, "m.bin")
	check("API down, the CDN holds the version held", got, err, v1)

	bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	got, err = readWhole(s, folder, "m.bin")
	check("API and CDN down, the version cached", got, err, v1)

	// A newer version is published elsewhere; then the API goes down.
	bed.APIProxy.Clear()
	bed.CDNProxy.Clear()
	v2 := uploadRandom(t, up, folder, "m.bin", 2<<20+7)
	smalls = append(smalls, bed.SmallPart(t, folder, "m.bin"))
	bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	if got, err := readWhole(s, folder, "m.bin"); !errors.Is(err, resources.ErrUpstream) {
		t.Fatalf("API down, a newer version on the CDN: %d bytes (v1 %v, v2 %v), %v; want ErrUpstream",
			len(got), bytes.Equal(got, v1), bytes.Equal(got, v2), err)
	}
	bed.APIProxy.Clear()
	got, err = readWhole(s, folder, "m.bin")
	check("API back, the newer version", got, err, v2)

	// A restart: a new Store on the same cache, logged in, then the API
	// goes down. The cache holds v2 whole; without its small part it is
	// of no use.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := bed.LoggedIn(t, testbed.StoreOptions{CacheDir: dir, Timeout: 2 * time.Second})
	bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	if _, err := readWhole(s2, folder, "m.bin"); !errors.Is(err, resources.ErrUpstream) {
		t.Fatalf("restart, API down: %v, want ErrUpstream", err)
	}
	noSmallAtRest("restart")
	bed.APIProxy.Clear()
	got, err = readWhole(s2, folder, "m.bin")
	check("restart, API up", got, err, v2)

	// A logout drops the small parts held.
	s2.Logout()
	if s2.LoggedIn() {
		t.Fatal("logged in after Logout")
	}
	if err := s2.Login(context.Background(), bed.Email, bed.Password); err != nil {
		t.Fatal(err)
	}
	bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	if _, err := readWhole(s2, folder, "m.bin"); !errors.Is(err, resources.ErrUpstream) {
		t.Fatalf("after a logout, API down: %v, want ErrUpstream", err)
	}
	bed.APIProxy.Clear()
	noSmallAtRest("logout")
}

// TestPlainSizeInCacheMeta: an open records the plaintext size in the
// cache's metadata, where a listing finds it without the small part.
func TestPlainSizeInCacheMeta(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	up := bed.LoggedIn(t, testbed.StoreOptions{})
	dir := filepath.Join(t.TempDir(), "cache")
	s := bed.LoggedIn(t, testbed.StoreOptions{CacheDir: dir})
	plain := uploadRandom(t, up, folder, "m.bin", 1<<20+5)
	if _, err := readWhole(s, folder, "m.bin"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, folder, "m.bin.big.meta"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"plain_size":1048581`; !strings.Contains(string(meta), want) || len(plain) != 1048581 {
		t.Fatalf("sidecar %s, want %s", meta, want)
	}
}
