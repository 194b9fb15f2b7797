package fs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRefusesNonEmptyDir(t *testing.T) {
	needFUSE(t)
	s, _ := fixture(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Mount(dir, s, Options{})
	if err == nil {
		m.Unmount()
		t.Fatal("mounted over a non-empty directory")
	}
	if !errors.Is(err, ErrNotEmpty) || err.Error() != "mount "+dir+": mount point is not empty" {
		t.Fatalf("err = %q, want ErrNotEmpty", err)
	}
}

func TestRefusesLiveMount(t *testing.T) {
	s, _ := fixture(t)
	_, mnt := mountT(t, s, Options{})
	for _, d := range []string{mnt, filepath.Join(mnt, "..", filepath.Base(mnt))} {
		m, err := Mount(d, s, Options{})
		if err == nil {
			m.Unmount()
			t.Fatal("mounted twice on one directory")
		}
		if !errors.Is(err, ErrMounted) || err.Error() != "mount "+mnt+": mount point is already mounted" {
			t.Fatalf("err = %q, want ErrMounted", err)
		}
	}
}

func TestUnmount(t *testing.T) {
	needFUSE(t)
	s, _ := fixture(t)
	dir := t.TempDir()
	logs := &logBuf{}
	m, err := Mount(dir, s, Options{Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	// A busy mount: an open file and a working directory inside it.
	f, err := os.Open(filepath.Join(dir, "models", "size-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatalf("second Unmount: %v", err)
	}
	if slices.Contains(mountsUnder(filepath.Dir(dir)), dir) {
		t.Fatal("still mounted after Unmount")
	}
	if logs.count("level=WARN", "detaching lazily") != 1 || logs.count("mount: unmounted") != 1 {
		t.Fatalf("a busy unmount should detach lazily, once; log:\n%s", logs)
	}
	f.Close()
	within(t, 5*time.Second, "Wait after Unmount", m.Wait)
}

// TestStaleMountRecovery: a loader killed with SIGKILL leaves a dead mount
// (stat gives ENOTCONN); a reader blocked in it gets an error rather than
// hanging, and the next Mount detaches it and serves again: right after the
// death, while the kernel still caches the root's attributes (statfs tells),
// and after they expire (stat tells).
func TestStaleMountRecovery(t *testing.T) {
	needFUSE(t)
	t.Run("at once", func(t *testing.T) { staleMount(t, 0) })
	t.Run("after the attributes expire", func(t *testing.T) { staleMount(t, 3*helperEntryTimeout) })
}

// helperEntryTimeout is the mount helper's EntryTimeout.
const helperEntryTimeout = 100 * time.Millisecond

func staleMount(t *testing.T, wait time.Duration) {
	dir := t.TempDir()
	cmd := helper(t, "mount", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if slices.Contains(mountsUnder(filepath.Dir(dir)), dir) {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	await := func(want string) {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the loader child exited before %q", want)
				}
				if l == want {
					return
				}
			case <-timeout:
				t.Fatalf("the loader child did not say %q", want)
			}
		}
	}
	await("mounted")

	readErr := make(chan error, 1)
	go func() {
		f, err := os.Open(filepath.Join(dir, "models", big))
		if err != nil {
			readErr <- fmt.Errorf("open: %w", err)
			return
		}
		defer f.Close()
		_, err = f.ReadAt(make([]byte, 4096), 0)
		readErr <- err
	}()
	await("blocked")
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("the blocked read succeeded after the loader died")
		}
		t.Logf("blocked reader got: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a reader blocked in a dead mount still hangs")
	}
	time.Sleep(wait)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("statfs of the dead mount: %v, want ENOTCONN", err)
	}
	if _, err := os.Stat(dir); wait > 0 && !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
	}

	s, want := fixture(t)
	logs := &logBuf{}
	m, err := Mount(dir, s, Options{Logger: logs.logger()})
	if err != nil {
		t.Fatalf("Mount over the stale mount: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	if logs.count("level=WARN", "stale mount") != 1 {
		t.Errorf("the detach was not logged once; log:\n%s", logs)
	}
	got, err := os.ReadFile(filepath.Join(dir, "models", "size-10208"))
	if err != nil || !bytes.Equal(got, want["size-10208"]) {
		t.Fatalf("read after recovery: %d bytes, %v", len(got), err)
	}
	if n := strings.Count(strings.Join(mountsUnder(filepath.Dir(dir)), "\n"), dir); n != 1 {
		t.Fatalf("%d mounts on %s after recovery, want 1", n, dir)
	}
}
