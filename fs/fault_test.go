package fs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// The fault tests put the counting, fault-injecting proxy between the
// loader and MinIO, or between the loader and the Resource API, and look
// at what a user of the mount sees.

// faultStack uploads one 5 MiB resource and mounts a fresh loader whose CDN
// ranges and mount reads are bounded by readTimeout.
func faultStack(t *testing.T, opt testbed.Options, readTimeout time.Duration) (s *stack, store *resources.Store, dir string, want []byte) {
	t.Helper()
	s = newStack(t, opt)
	p := newPattern(6, 5<<20+123)
	want = p.bytes()
	s.upload(t, nil, "m.bin", bytes.NewReader(want))
	s.upload(t, nil, "other.bin", strings.NewReader("other resource"))
	// Wired as serve.go wires it: a stalled GET resumes after a third of
	// the read timeout, within the bound of the read waiting for it.
	store = s.bed.LoggedIn(t, testbed.StoreOptions{Timeout: readTimeout, RangeTimeout: readTimeout / 3})
	_, mnt := s.mount(t, store, Options{ReadTimeout: readTimeout})
	return s, store, filepath.Join(mnt, s.folder), want
}

// pread reads n bytes at off of an open file, bypassing nothing: a fresh
// loader's kernel cache is cold for ranges not read before.
func pread(f *os.File, n int, off int64) ([]byte, error) {
	b := make([]byte, n)
	k, err := f.ReadAt(b, off)
	if err == io.EOF && k == n {
		err = nil
	}
	return b[:k], err
}

// TestCDNStallFailsFastAndRecovers: with the CDN stalled mid-read, a read
// of uncached bytes fails with EIO within the read timeout (never ENOENT,
// never a hang); ls and stat keep answering; cached bytes keep reading;
// once the CDN is back, the same open file reads again, without a restart.
func TestCDNStallFailsFastAndRecovers(t *testing.T) {
	const readTimeout = 2 * time.Second
	s, _, dir, want := faultStack(t, testbed.Options{ProxyCDN: true}, readTimeout)
	f, err := os.Open(filepath.Join(dir, "m.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := pread(f, 1<<20, 0); err != nil || !bytes.Equal(got, want[:1<<20]) {
		t.Fatalf("first MiB: %v", err)
	}

	s.bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Stall})
	start := time.Now()
	var rerr error
	within(t, 5*readTimeout+5*time.Second, "read with the CDN stalled", func() { _, rerr = pread(f, 64<<10, 3<<20) })
	if !errors.Is(rerr, syscall.EIO) {
		t.Fatalf("read with the CDN stalled: %v after %v, want EIO", rerr, time.Since(start))
	}
	t.Logf("stalled read failed after %v", time.Since(start))

	within(t, 3*readTimeout+5*time.Second, "ls and stat with the CDN stalled", func() {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 || ents[0].Name() != "m.bin" {
			t.Errorf("ls: %v, %v; want m.bin (known to the cache) listed", ents, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "m.bin")); err != nil || fi.Size() != int64(len(want)) {
			t.Errorf("stat: %v", err)
		}
	})
	within(t, 3*readTimeout, "cached read with the CDN stalled", func() {
		if got, err := pread(f, 1<<20, 0); err != nil || !bytes.Equal(got, want[:1<<20]) {
			t.Errorf("cached first MiB with the CDN stalled: %v", err)
		}
	})

	s.bed.CDNProxy.Clear()
	time.Sleep(retryWindow + 100*time.Millisecond)
	within(t, 30*time.Second, "read after the CDN returned", func() {
		if got, err := pread(f, 64<<10, 3<<20); err != nil || !bytes.Equal(got, want[3<<20:3<<20+64<<10]) {
			t.Errorf("read after the CDN returned: %v", err)
		}
		if sum, n := fileSum(t, filepath.Join(dir, "m.bin")); n != int64(len(want)) || sum != sha256.Sum256(want) {
			t.Errorf("whole file after the CDN returned: %d bytes, sha mismatch %v", n, sum != sha256.Sum256(want))
		}
	})
}

// TestCDNResetAndCutResume: connections reset or cut short in the middle
// of ranged GETs are resumed; the bytes through the mount are exact.
func TestCDNResetAndCutResume(t *testing.T) {
	for _, mode := range []cdntest.FaultMode{cdntest.Reset, cdntest.Cut} {
		s, _, dir, want := faultStack(t, testbed.Options{ProxyCDN: true}, 10*time.Second)
		conns := s.bed.CDNProxy.Conns()
		s.bed.CDNProxy.Inject(cdntest.Fault{Mode: mode, After: 300 << 10, Times: 3})
		if sum, n := fileSum(t, filepath.Join(dir, "m.bin")); n != int64(len(want)) || sum != sha256.Sum256(want) {
			t.Fatalf("mode %d: %d bytes, sha mismatch %v", mode, n, sum != sha256.Sum256(want))
		}
		if s.bed.CDNProxy.Conns() == conns {
			t.Fatalf("mode %d: no new connection: the fault never struck", mode)
		}
	}
}

// TestReplacedObjectNeverSpliced: the object is replaced while a file is
// open on its old version; reads of bytes not yet cached fail (EIO) rather
// than return the new version's bytes; a new open reads the new version.
func TestReplacedObjectNeverSpliced(t *testing.T) {
	s, _, dir, v1 := faultStack(t, testbed.Options{}, 10*time.Second)
	f, err := os.Open(filepath.Join(dir, "m.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := pread(f, 1<<20, 0); err != nil || !bytes.Equal(got, v1[:1<<20]) {
		t.Fatalf("first MiB: %v", err)
	}
	v2 := newPattern(7, int64(len(v1))).bytes()
	s.upload(t, nil, "m.bin", bytes.NewReader(v2))
	failed := 0
	for off := int64(1 << 20); off < int64(len(v1)); off += 256 << 10 {
		got, err := pread(f, 4096, off)
		if err != nil {
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("read at %d of the replaced object: %v, want EIO", off, err)
			}
			failed++
			continue
		}
		if !bytes.Equal(got, v1[off:off+4096]) {
			t.Fatalf("read at %d: bytes of another version spliced in (new version: %v)", off, bytes.Equal(got, v2[off:off+4096]))
		}
	}
	if failed == 0 {
		t.Fatal("every read of the replaced object succeeded: its bytes came from somewhere")
	}
	time.Sleep(DefaultEntryTimeout + 100*time.Millisecond)
	if sum, n := fileSum(t, filepath.Join(dir, "m.bin")); n != int64(len(v2)) || sum != sha256.Sum256(v2) {
		t.Fatalf("new open: %d bytes, not the new version", n)
	}
}

// TestAPIDown: with the Resource API unreachable, /load answers 502 with a
// detail, opening a file whose small part is not known fails with EIO (not
// ENOENT), and a file already open keeps reading.
func TestAPIDown(t *testing.T) {
	s, store, dir, want := faultStack(t, testbed.Options{ProxyAPI: true}, 3*time.Second)
	f, err := os.Open(filepath.Join(dir, "m.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := pread(f, 4096, 0); err != nil || !bytes.Equal(got, want[:4096]) {
		t.Fatalf("first page: %v", err)
	}
	ctl := httptest.NewServer(control.NewHandler(control.Config{Store: store}))
	t.Cleanup(ctl.Close)

	s.bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	within(t, 30*time.Second, "open with the API down", func() {
		_, err := os.Open(filepath.Join(dir, "other.bin"))
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("open of a file never opened, API down: %v, want EIO", err)
		}
	})
	within(t, 30*time.Second, "/load with the API down", func() {
		resp, err := http.Post(ctl.URL+"/load/other.bin", "application/json", strings.NewReader(`{"folder":"`+s.folder+`"}`))
		if err != nil {
			t.Errorf("/load: %v", err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"detail"`) || len(body) < 20 {
			t.Errorf("/load with the API down: %d %s, want 502 with a detail", resp.StatusCode, body)
		}
	})
	within(t, 60*time.Second, "reading the open file with the API down", func() {
		got := make([]byte, len(want))
		if n, err := f.ReadAt(got, 0); (err != nil && err != io.EOF) || n != len(want) || !bytes.Equal(got, want) {
			t.Errorf("open file with the API down: %d bytes, %v", n, err)
		}
	})
}
