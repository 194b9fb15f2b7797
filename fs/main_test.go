package fs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn/cdntest"
)

// TestMain runs the tests with their temporary directories under one
// root and one shared MinIO server, and fails the run when a mount under
// the root is left behind (a loader the tests started included).
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "azaion-fs-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if tmp, err = filepath.EvalSymlinks(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("TMPDIR", tmp)
	code := cdntest.Run(m) // one MinIO for the full-stack tests, stopped before the check
	if left := mountsUnder(tmp); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests left mounts behind: %s\n", strings.Join(left, " "))
		for _, dir := range left {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
		code = 1
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

// mountsUnder lists the mount points under dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"(cannot read /proc/self/mountinfo: " + err.Error() + ")"}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			if p := unescapeMountinfo(fields[4]); strings.HasPrefix(p, dir+"/") {
				out = append(out, p)
			}
		}
	}
	return out
}

// needFUSE skips a test that mounts where mounting is impossible.
func needFUSE(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE directly needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
}

// mountT mounts store on a fresh directory and unmounts it when the test ends.
func mountT(t testing.TB, store Store, opt Options) (*Server, string) {
	t.Helper()
	needFUSE(t)
	dir := t.TempDir()
	if opt.Logger == nil {
		opt.Logger = (&logBuf{}).logger()
	}
	m, err := Mount(dir, store, opt)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	return m, dir
}

// within fails the test when fn does not return within d.
func within(t testing.TB, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}
