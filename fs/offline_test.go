package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// TestRestartNeedsTheAPI: with the Resource API down, a loader that opened
// a file before opens it again through the mount and /load (its small
// part is held in memory), while a restarted loader on the same cache
// gets EIO from the mount and 502 from /load: the small part is not on
// disk. No file under the cache directory holds any of it.
func TestRestartNeedsTheAPI(t *testing.T) {
	const timeout = 3 * time.Second
	s := newStack(t, testbed.Options{ProxyAPI: true})
	want := newPattern(11, 3<<20+77).bytes()
	s.upload(t, nil, "m.bin", bytes.NewReader(want))
	small := s.bed.SmallPart(t, s.folder, "m.bin")
	cacheDir := filepath.Join(t.TempDir(), "cache")

	// load posts /load of m.bin to ctl and returns the status and body.
	load := func(ctl *httptest.Server) (int, []byte) {
		resp, err := http.Post(ctl.URL+"/load/m.bin", "application/json", strings.NewReader(`{"folder":"`+s.folder+`"}`))
		if err != nil {
			t.Fatalf("/load: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	loader := func() (string, *httptest.Server) {
		store := s.bed.LoggedIn(t, testbed.StoreOptions{CacheDir: cacheDir, Timeout: timeout})
		_, mnt := s.mount(t, store, Options{ReadTimeout: timeout})
		ctl := httptest.NewServer(control.NewHandler(control.Config{Store: store}))
		t.Cleanup(ctl.Close)
		return filepath.Join(mnt, s.folder, "m.bin"), ctl
	}

	path, ctl := loader()
	if sum, n := fileSum(t, path); n != int64(len(want)) || sum != sha256.Sum256(want) {
		t.Fatalf("first read: %d bytes", n)
	}
	s.bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	within(t, 30*time.Second, "reopen with the API down", func() {
		if sum, n := fileSum(t, path); n != int64(len(want)) || sum != sha256.Sum256(want) {
			t.Errorf("reopen with the API down: %d bytes, not the version", n)
		}
		if code, body := load(ctl); code != 200 || !bytes.Equal(body, want) {
			t.Errorf("/load with the API down: %d, %d bytes", code, len(body))
		}
	})

	s.bed.APIProxy.Clear()
	path, ctl = loader() // a restart: a new loader on the same cache
	s.bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	within(t, 30*time.Second, "open after a restart with the API down", func() {
		if _, err := os.ReadFile(path); !errors.Is(err, syscall.EIO) {
			t.Errorf("open after a restart, API down: %v, want EIO", err)
		}
		if code, body := load(ctl); code != http.StatusBadGateway {
			t.Errorf("/load after a restart, API down: %d %s, want 502", code, body)
		}
	})
	s.bed.APIProxy.Clear()

	filepath.WalkDir(cacheDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, small[len(small)-48:len(small)-16]) {
			t.Errorf("the small part at rest in %s", p)
		}
		return nil
	})
}
