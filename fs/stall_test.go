package fs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// TestDDStallBoundPerReader: a dd-like reader (sequential reads of 128 KiB)
// of a file whose CDN freezes gets EIO once read_timeout has passed without
// a byte for it, counted across its reads, not per read: dd reads through
// the kernel's read-ahead, where each read of the mount waits out only part
// of the bound.
func TestDDStallBoundPerReader(t *testing.T) {
	const readTimeout = 2 * time.Second
	s := newStack(t, testbed.Options{ProxyCDN: true})
	p := newPattern(11, 48<<20)
	s.upload(t, nil, "dd.bin", p)
	store := s.bed.LoggedIn(t, testbed.StoreOptions{Timeout: readTimeout})
	_, mnt := s.mount(t, store, Options{ReadTimeout: readTimeout})
	f, err := os.Open(filepath.Join(mnt, s.folder, "dd.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 128<<10)
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatalf("first read: %v", err)
	}
	s.bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Stall})
	frozen := time.Now()
	var rerr error
	within(t, 10*readTimeout, "dd with the CDN frozen", func() {
		for {
			start := time.Now()
			n, err := f.Read(buf)
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Logf("a read waited %v for %d bytes, %v", d, n, err)
			}
			if err != nil {
				rerr = err
				return
			}
		}
	})
	waited := time.Since(frozen)
	t.Logf("EIO %v after the CDN froze", waited)
	if !errors.Is(rerr, syscall.EIO) {
		t.Fatalf("dd with the CDN frozen: %v, want EIO", rerr)
	}
	var errno syscall.Errno
	if !errors.As(rerr, &errno) || errno != syscall.EIO {
		t.Fatalf("errno %v, want exactly EIO", rerr)
	}
	if limit := readTimeout * 13 / 10; waited > limit {
		t.Fatalf("dd waited %v without a byte before EIO, want at most %v (1.3 × read_timeout)", waited, limit)
	}
}
