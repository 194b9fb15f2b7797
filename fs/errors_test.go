package fs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
)

func TestUnknownNamesAreENOENT(t *testing.T) {
	s, _ := fixture(t)
	_, mnt := mountT(t, s, Options{})
	for _, p := range []string{
		"models/nope", "nofolder", "nofolder/size-1", "models/.hidden", "models/a b",
		"empty/size-1", strings.Repeat("x", 256),
	} {
		if _, err := os.Stat(filepath.Join(mnt, p)); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("stat %s: %v, want ENOENT", p, err)
		}
	}
}

// TestUnlistedNameOpens: a name the folder does not list still opens.
func TestUnlistedNameOpens(t *testing.T) {
	s, _ := fixture(t)
	hidden := &unlisting{memStore: s, hide: "size-16"}
	_, mnt := mountT(t, hidden, Options{})
	if got := names(t, filepath.Join(mnt, "models")); slices.Contains(got, "size-16") {
		t.Fatalf("ls models = %q, should not list size-16", got)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "models", "size-16"))
	if err != nil || !bytes.Equal(got, plaintext(3, 16)) {
		t.Fatalf("read the unlisted size-16: %x, %v", got, err)
	}
}

type unlisting struct {
	*memStore
	hide string
}

func (u *unlisting) List(ctx context.Context, folder string) ([]string, error) {
	names, err := u.memStore.List(ctx, folder)
	return slices.DeleteFunc(names, func(n string) bool { return n == u.hide }), err
}

func TestUpstreamErrorIsEIO(t *testing.T) {
	s, _ := fixture(t)
	s.setFail("models", "broken", fmt.Errorf("get models/broken.big: %w", resources.ErrUpstream))
	logs := &logBuf{}
	_, mnt := mountT(t, s, Options{Logger: logs.logger()})
	p := filepath.Join(mnt, "models", "broken")
	if !slices.Contains(names(t, filepath.Join(mnt, "models")), "broken") {
		t.Fatal("broken is not listed")
	}
	if _, err := os.Open(p); !errors.Is(err, syscall.EIO) {
		t.Fatalf("open: %v, want EIO", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, syscall.EIO) {
		t.Fatalf("stat: %v, want EIO", err)
	}
	if n := logs.count("level=ERROR", "folder=models", "name=broken", "upstream failure"); n < 1 {
		t.Fatalf("no error logged with folder, name and cause; log:\n%s", logs)
	}
}

// TestReadTimeout: a big part that blocks and ignores its context makes a
// read fail with EIO after ReadTimeout, not hang.
func TestReadTimeout(t *testing.T) {
	s, _ := fixture(t)
	part := newBlockingPart(t, false)
	s.setPart("models", big, part.wrap)
	logs := &logBuf{}
	_, mnt := mountT(t, s, Options{ReadTimeout: time.Second, Logger: logs.logger()})
	f, err := os.Open(filepath.Join(mnt, "models", big))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	var n int
	within(t, 5*time.Second, "a read from a blocked store", func() { n, err = f.ReadAt(make([]byte, 4096), 0) })
	took := time.Since(start)
	t.Logf("read failed after %v", took)
	if !errors.Is(err, syscall.EIO) || n != 0 {
		t.Fatalf("read: %d bytes, %v; want EIO", n, err)
	}
	if took < 900*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("read failed after %v, want about the 1 s ReadTimeout", took)
	}
	if logs.count("level=ERROR", "folder=models", "name="+big, "deadline exceeded") < 1 {
		t.Fatalf("the timeout was not logged; log:\n%s", logs)
	}
}

// TestInterruptCancelsRead: when a process blocked in a read is killed, the
// kernel interrupts the request and the store's ReadAt sees its context
// cancelled, long before ReadTimeout.
func TestInterruptCancelsRead(t *testing.T) {
	s, _ := fixture(t)
	part := newBlockingPart(t, true)
	s.setPart("models", big, part.wrap)
	_, mnt := mountT(t, s, Options{ReadTimeout: 30 * time.Second})
	cmd := helper(t, "read", filepath.Join(mnt, "models", big))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-part.entered:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the reader's read never reached the store")
	}
	start := time.Now()
	cmd.Process.Kill()
	select {
	case err := <-part.done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the store's read ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the store's read was not cancelled within 5 s of the reader's death")
	}
	t.Logf("cancelled %v after the kill", time.Since(start))
	within(t, 5*time.Second, "the killed reader", func() { cmd.Wait() })
}

func TestNotLoggedIn(t *testing.T) {
	s, want := fixture(t)
	s.setLoggedIn(false)
	logs := &logBuf{}
	_, mnt := mountT(t, s, Options{Logger: logs.logger()})
	if got := names(t, mnt); !slices.Equal(got, []string{"empty", "extra", "models"}) {
		t.Fatalf("ls / before login = %q", got)
	}
	if got := names(t, filepath.Join(mnt, "models")); len(got) != len(sizes) {
		t.Fatalf("ls models before login = %q", got)
	}
	p := filepath.Join(mnt, "models", "size-10208")
	for range 3 {
		if _, err := os.ReadFile(p); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("read before login: %v, want EACCES", err)
		}
	}
	if n := logs.count("POST /login"); n != 1 {
		t.Fatalf("%d log lines say how to log in, want 1; log:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("not being logged in was logged as an error:\n%s", logs)
	}

	s.setLoggedIn(true)
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want["size-10208"]) {
		t.Fatalf("read after login: %d bytes, %v", len(got), err)
	}
}

// helper makes a command that runs this test binary as TestHelperProcess
// in the given mode.
func helper(t testing.TB, mode, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperMode+"="+mode, helperPath+"="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

const (
	helperMode = "AZAION_FS_HELPER"
	helperPath = "AZAION_FS_HELPER_PATH"
)

// mapFile maps the whole file at path, read-only.
func mapFile(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHelperProcess is not a test: it is the child process other tests
// start (helper), and returns at once when run as a test.
//   - read: reads 4 KiB of the file with O_DIRECT (and is killed meanwhile).
//   - mmap: maps the file and prints the SHA-256 of the mapping. (Not in
//     the test process: a page fault on the mount can block there while
//     the garbage collector stops the world, the mount's server included.)
//   - mmap-hold: maps the file, prints the mapping's SHA-256, and again
//     after a line on stdin.
//   - mount: mounts a store whose stuck file blocks forever on the
//     directory, says "mounted", and waits to be killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperPath)
	switch os.Getenv(helperMode) {
	case "":
		return
	case "read":
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = syscall.Pread(fd, make([]byte, 4096), 0)
		t.Fatalf("read returned: %v", err)
	case "mmap":
		fmt.Printf("%x\n", sha256.Sum256(mapFile(t, path)))
	case "mmap-hold":
		// Maps the file and prints the mapping's SHA-256, then again
		// after a line on stdin ("fault" when a page cannot be read).
		m := mapFile(t, path)
		sum := func() (out string) {
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			defer func() {
				if recover() != nil {
					out = "fault"
				}
			}()
			return fmt.Sprintf("%x", sha256.Sum256(m))
		}
		fmt.Println(sum())
		bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Println(sum())
	case "mount":
		s, _ := fixture(t)
		part := newBlockingPart(t, false)
		s.setPart("models", big, part.wrap)
		m, err := Mount(path, s, Options{ReadTimeout: time.Hour, EntryTimeout: helperEntryTimeout})
		if err != nil {
			t.Fatal(err)
		}
		out := bufio.NewWriter(os.Stdout)
		fmt.Fprintln(out, "mounted")
		out.Flush()
		select {
		case <-part.entered:
			fmt.Fprintln(out, "blocked")
			out.Flush()
		case <-time.After(30 * time.Second):
		}
		time.Sleep(30 * time.Second) // the parent kills us long before
		m.Unmount()
		t.Fatal("not killed")
	}
}
