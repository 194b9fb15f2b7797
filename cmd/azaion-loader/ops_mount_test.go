package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMountHelper mounts through mount(8) and Debian's mount.fuse3, as an
// fstab line or a .mount unit does: mount -t fuse.azaion-loader CONFIG DIR
// -o ro,allow_other. mount(8) runs its helpers with no PATH, so /bin/sh's
// default one finds azaion-loader; the test runs in a private mount
// namespace with the built binary bind-mounted over /usr/local/sbin, so
// nothing outside the test changes. It reads the resource through the mount
// (the helper returned only once the mount was live and logged in), then
// umounts, after which the daemon exits.
func testMountHelper(t *testing.T, bin string) {
	for _, tool := range []string{"unshare", "mount", "umount", "/sbin/mount.fuse3", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (apt-get install fuse3 util-linux)", tool)
		}
	}
	binDir := filepath.Dir(bin)
	b := newOpsBed(t, 3<<20+12345)
	mnt := filepath.Join(b.dir, "mnt")
	os.Mkdir(mnt, 0o755)
	log := filepath.Join(b.dir, "daemon.log")
	file := filepath.Join(mnt, b.folder, b.name)
	script := `set -e
mount --bind "$BIN_DIR" /usr/local/sbin
mount -t fuse.azaion-loader "$CONFIG" "$MNT" -o "ro,allow_other,noatime,log=$LOG"
echo "mounted: $(grep -c " $MNT " /proc/self/mountinfo)"
sha256sum "$FILE" | cut -d' ' -f1
if echo x > "$MNT/$FOLDER/new" 2>/dev/null; then echo "write: allowed"; else echo "write: refused"; fi
umount "$MNT"
echo "unmounted"
`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = b.env("BIN_DIR="+binDir, "CONFIG="+b.config, "MNT="+mnt, "LOG="+log, "FILE="+file, "FOLDER="+b.folder)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A daemon that outlives a failed test is killed: it runs in the
	// namespace, named by its unique config path.
	t.Cleanup(func() { killDaemons(t, b.config) })
	err := cmd.Run()
	if err != nil {
		daemonLog, _ := os.ReadFile(log)
		t.Fatalf("mount script: %v\nstdout:\n%s\nstderr:\n%s\ndaemon log:\n%s", err, stdout.String(), stderr.String(), daemonLog)
	}
	want := "mounted: 1\n" + b.sum + "\nwrite: refused\nunmounted\n"
	if got := stdout.String(); got != want {
		t.Fatalf("script output:\n%s\nwant:\n%s\nstderr:\n%s", got, want, stderr.String())
	}
	// The daemon ends with its mount.
	waitGone(t, b.listen, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		daemonLog, _ := os.ReadFile(log)
		if strings.Contains(string(daemonLog), "the mount was unmounted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon log lacks the unmount line:\n%s", daemonLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMountHelperErrors: errors before the mount is live reach the caller
// with a non-zero exit, and bad options are refused before anything starts.
func testMountHelperErrors(t *testing.T, bin string) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cfg := filepath.Join(dir, "loader.yaml")
	os.WriteFile(cfg, []byte("api_url: http://127.0.0.1:1\ncache_dir: "+dir+"/cache\nlisten: 127.0.0.1:0\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"config error", []string{cfg, mnt, "-o", "ro"}, 1, "resource_key or resource_key_file"},
		{"rw refused", []string{cfg, mnt, "-o", "rw"}, 2, "option rw: the mount is read-only"},
		{"unknown option", []string{cfg, mnt, "-o", "ro,frobnicate"}, 2, `unknown mount option "frobnicate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Fatalf("exit %d (%v), want %d; stderr:\n%s", code, err, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, stderr.String())
			}
			if mounted(t, mnt) {
				t.Fatal("left a mount behind")
			}
		})
	}
}

func mounted(t *testing.T, dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), " "+dir+" ")
}

// killDaemons kills the processes whose command line holds arg.
func killDaemons(t *testing.T, arg string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(arg)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		t.Logf("killing a daemon left running: pid %d", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
