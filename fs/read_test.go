package fs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sizes are the plaintext sizes the tests read: empty, within one block,
// on and around block boundaries, around the 3072-byte small-part cap,
// and large enough for many FUSE reads.
var sizes = []int{0, 1, 15, 16, 17, 10207, 10208, 10224, 5 << 20}

const big = "size-5242880"

// fixture is a store with one resource of each size in "models", one in
// "extra", and a configured folder "empty" with none. The resources are
// encrypted once per test binary.
func fixture(t testing.TB) (*memStore, map[string][]byte) {
	t.Helper()
	fixtureOnce.Do(func() {
		enc := newMemStore()
		fixturePlain = map[string][]byte{}
		for i, n := range sizes {
			name := fmt.Sprintf("size-%d", n)
			fixturePlain[name] = plaintext(uint64(i), n)
			enc.put(t, "models", name, fixturePlain[name])
		}
		enc.put(t, "extra", "readme.txt", []byte("extra folder\n"))
		fixtureFiles = enc.files
	})
	s := newMemStore("models", "empty")
	for k, f := range fixtureFiles {
		c := *f
		s.files[k] = &c
	}
	s.versions = len(fixtureFiles) + 1
	return s, fixturePlain
}

var (
	fixtureOnce  sync.Once
	fixturePlain map[string][]byte
	fixtureFiles map[string]*memFile
)

func names(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestTreeAndWholeFiles(t *testing.T) {
	s, want := fixture(t)
	_, mnt := mountT(t, s, Options{UID: 1234, GID: 5678})

	if got, exp := names(t, mnt), []string{"empty", "extra", "models"}; !slices.Equal(got, exp) {
		t.Fatalf("ls / = %q, want %q", got, exp)
	}
	var exp []string
	for _, n := range sizes {
		exp = append(exp, fmt.Sprintf("size-%d", n))
	}
	slices.Sort(exp)
	if got := names(t, filepath.Join(mnt, "models")); !slices.Equal(got, exp) {
		t.Fatalf("ls models = %q, want %q", got, exp)
	}
	if got := names(t, filepath.Join(mnt, "empty")); len(got) != 0 {
		t.Fatalf("ls empty = %q, want nothing", got)
	}

	for _, d := range []string{mnt, filepath.Join(mnt, "models"), filepath.Join(mnt, "empty")} {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFDIR|0o555 || st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("stat %s: mode %o uid %d gid %d, want %o 1234 5678", d, st.Mode, st.Uid, st.Gid, syscall.S_IFDIR|0o555)
		}
	}
	for name, plain := range want {
		p := filepath.Join(mnt, "models", name)
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFREG|0o444 || st.Size != int64(len(plain)) || st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("stat %s: mode %o size %d uid %d gid %d, want %o %d 1234 5678", name, st.Mode, st.Size, st.Uid, st.Gid, syscall.S_IFREG|0o444, len(plain))
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if sha256.Sum256(got) != sha256.Sum256(plain) {
			t.Errorf("%s: SHA-256 of %d bytes read differs from the original's (%d bytes)", name, len(got), len(plain))
		}
	}
	got, err := os.ReadFile(filepath.Join(mnt, "extra", "readme.txt"))
	if err != nil || string(got) != "extra folder\n" {
		t.Errorf("extra/readme.txt = %q, %v", got, err)
	}
}

// TestRandomPread reads random ranges, many across block and page
// boundaries and past the end, through the page cache and with O_DIRECT
// (each one a FUSE read at that exact offset), and maps the file.
func TestRandomPread(t *testing.T) {
	s, want := fixture(t)
	_, mnt := mountT(t, s, Options{})
	rng := rand.New(rand.NewPCG(7, 11))
	for _, name := range []string{big, "size-10224", "size-10207", "size-17"} {
		plain := want[name]
		p := filepath.Join(mnt, "models", name)
		cached, err := syscall.Open(p, syscall.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(cached)
		direct, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(direct)

		size := int64(len(plain))
		for i := range 250 {
			var off int64
			switch i % 3 {
			case 0: // a block or page boundary, ±1
				unit := []int64{16, 4096, 131072}[rng.IntN(3)]
				off = max(0, rng.Int64N(size/unit+2)*unit+rng.Int64N(3)-1)
			default:
				off = rng.Int64N(size + 64)
			}
			n := rng.IntN(min(int(size), 300<<10) + 64)
			fd := cached
			if i%2 == 1 {
				fd = direct
			}
			buf := make([]byte, n)
			got, err := preadRetry(fd, buf, off)
			if err != nil {
				t.Fatalf("%s: pread(%d bytes at %d, direct=%v): %v", name, n, off, fd == direct, err)
			}
			exp := plain[min(off, size):min(off+int64(n), size)]
			if got != len(exp) || !bytes.Equal(buf[:got], exp) {
				t.Fatalf("%s: pread(%d bytes at %d, direct=%v) = %d bytes, want %d (equal prefix: %v)",
					name, n, off, fd == direct, got, len(exp), bytes.Equal(buf[:min(got, len(exp))], exp[:min(got, len(exp))]))
			}
		}

		if mmapSum(t, p) != sha256.Sum256(plain) {
			t.Errorf("mmap %s: bytes differ from the original", name)
		}
	}
}

func TestConcurrentReaders(t *testing.T) {
	s, want := fixture(t)
	_, mnt := mountT(t, s, Options{})
	p := filepath.Join(mnt, "models", big)
	sum := sha256.Sum256(want[big])
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			flags := os.O_RDONLY
			if i%2 == 1 {
				flags |= syscall.O_DIRECT
			}
			f, err := os.OpenFile(p, flags, 0)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			h := sha256.New()
			// Odd readers read in 100003-byte steps, so that their FUSE reads
			// start off any block boundary.
			buf := make([]byte, 64<<10+i%2*(100003-64<<10))
			if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil {
				errs <- fmt.Errorf("reader %d: %w", i, err)
				return
			}
			if [32]byte(h.Sum(nil)) != sum {
				errs <- fmt.Errorf("reader %d: SHA-256 differs", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// mmapSum is the SHA-256 of path read through a shared mapping, in a child
// process (see TestHelperProcess).
func mmapSum(t testing.TB, path string) [32]byte {
	t.Helper()
	cmd := helper(t, "mmap", path)
	var out bytes.Buffer
	cmd.Stdout = &out
	var err error
	within(t, time.Minute, "the mmap helper", func() { err = cmd.Run() })
	if err != nil {
		t.Fatalf("mmap %s: %v", path, err)
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	sum, err := hex.DecodeString(line)
	if err != nil || len(sum) != sha256.Size {
		t.Fatalf("mmap %s: the helper said %q", path, out.String())
	}
	return [32]byte(sum)
}
