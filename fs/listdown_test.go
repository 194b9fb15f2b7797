package fs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// TestStackListCDNDown: with the CDN refusing every connection, a folder
// lists the names the cache knows (never an empty listing that reads as
// "no such model"), and a folder of which nothing is known fails its
// listing with EIO exactly.
func TestStackListCDNDown(t *testing.T) {
	s := newStack(t, testbed.Options{ProxyCDN: true})
	s.upload(t, nil, "known.bin", strings.NewReader("known resource"))
	s.upload(t, nil, "remote.bin", strings.NewReader("only on the CDN"))

	warm := s.bed.LoggedIn(t, testbed.StoreOptions{Timeout: 3 * time.Second})
	_, mnt := s.mount(t, warm, Options{ReadTimeout: 10 * time.Second})
	dir := filepath.Join(mnt, s.folder)
	if got := names(t, dir); !slices.Equal(got, []string{"known.bin", "remote.bin"}) {
		t.Fatalf("ls with the CDN up = %q", got)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "known.bin")); err != nil || string(got) != "known resource" {
		t.Fatalf("known.bin: %q, %v", got, err)
	}
	// A loader with nothing cached, whose folder is configured (so that
	// looking the folder up needs no CDN): only the listing can fail.
	cold := s.bed.LoggedIn(t, testbed.StoreOptions{Timeout: 3 * time.Second, Folders: []string{s.folder}})
	_, coldMnt := s.mount(t, cold, Options{ReadTimeout: 10 * time.Second})

	s.bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	time.Sleep(DefaultEntryTimeout + 100*time.Millisecond) // the kernel's cached listing expires
	within(t, 30*time.Second, "ls with the CDN down", func() {
		if got := names(t, dir); !slices.Equal(got, []string{"known.bin"}) {
			t.Errorf("ls with the CDN down = %q, want the cached [known.bin]", got)
		}
		_, err := os.ReadDir(filepath.Join(coldMnt, s.folder))
		var errno syscall.Errno
		if !errors.As(err, &errno) || errno != syscall.EIO {
			t.Errorf("ls of a folder nothing is known of, CDN down: %v, want EIO", err)
		}
	})

	s.bed.CDNProxy.Clear()
	if got := names(t, filepath.Join(coldMnt, s.folder)); !slices.Equal(got, []string{"known.bin", "remote.bin"}) {
		t.Fatalf("ls after the CDN returned = %q", got)
	}
}
