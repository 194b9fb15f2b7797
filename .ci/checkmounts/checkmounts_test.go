// Package checkmounts tests .ci/check-mounts, which make test runs after
// go test: it must judge only the mounts under the run's own directory.
package checkmounts

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// mountNamedLoader mounts an empty FUSE filesystem on dir that /proc/mounts
// shows as a loader's: source azaion-loader, type fuse.azaion-loader.
func mountNamedLoader(t *testing.T, dir string) *fuse.Server {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := fs.Mount(dir, &fs.Inode{}, &fs.Options{MountOptions: fuse.MountOptions{
		FsName: "azaion-loader", Name: "azaion-loader", DirectMount: true,
	}})
	if err != nil {
		t.Fatalf("mount %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if mounted(t, dir) {
			srv.Unmount()
		}
	})
	return srv
}

// mounted reports whether /proc/self/mounts has a fuse.azaion-loader mount
// on dir.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 2 && fields[1] == dir && fields[2] == "fuse.azaion-loader" {
			return true
		}
	}
	return false
}

func checkMounts(t *testing.T, root string) (int, string) {
	t.Helper()
	out, err := exec.Command("../check-mounts", root).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestLeavesOtherMountsAlone: a loader-typed mount outside the run's
// directory (a loader in service, say) passes check-mounts and stays
// mounted; one left under it fails check-mounts, is named and unmounted.
func TestLeavesOtherMountsAlone(t *testing.T) {
	base := t.TempDir()
	run := filepath.Join(base, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	// Outside run, and a sibling whose name only starts like it.
	other := filepath.Join(base, "mnt", "azaion")
	sibling := filepath.Join(base, "run-other", "TestX")
	mountNamedLoader(t, other)
	mountNamedLoader(t, sibling)

	if code, out := checkMounts(t, run); code != 0 || out != "" {
		t.Fatalf("check-mounts with no leftovers of its own: exit %d, output %q; want 0 and none", code, out)
	}
	if !mounted(t, other) || !mounted(t, sibling) {
		t.Fatal("check-mounts unmounted a mount outside its run's directory")
	}

	left := filepath.Join(run, "TestLeft", "001", "mnt")
	mountNamedLoader(t, left)
	code, out := checkMounts(t, run)
	if code != 1 || !strings.Contains(out, left) {
		t.Fatalf("check-mounts with a leftover: exit %d, output %q; want 1 naming %s", code, out, left)
	}
	if mounted(t, left) {
		t.Fatal("check-mounts left its run's leftover mounted")
	}
	if !mounted(t, other) || !mounted(t, sibling) {
		t.Fatal("check-mounts unmounted a mount outside its run's directory")
	}
	if code, _ := checkMounts(t, ""); code != 2 {
		t.Fatalf("check-mounts without a directory: exit %d, want 2", code)
	}
}
