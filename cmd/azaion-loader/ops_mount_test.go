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
mount -t fuse.azaion-loader "$CONFIG" "$MNT" -o "ro,allow_other,noatime,log=$LOG" >"$SAID" 2>&1
echo "mount said: $(wc -c <"$SAID") bytes"
echo "mounted: $(grep -c " $MNT " /proc/self/mountinfo)"
echo "source: $(awk -v m="$MNT" '$2 == m {print $1}' /proc/self/mounts)"
sha256sum "$FILE" | cut -d' ' -f1
if echo x > "$MNT/$FOLDER/new" 2>/dev/null; then echo "write: allowed"; else echo "write: refused"; fi
umount "$MNT"
echo "unmounted"
`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = b.env("BIN_DIR="+binDir, "CONFIG="+b.config, "MNT="+mnt, "LOG="+log, "FILE="+file, "FOLDER="+b.folder,
		"SAID="+filepath.Join(b.dir, "mount.out"))
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
	// mount prints nothing, and the mount's source is the config file.
	want := "mount said: 0 bytes\nmounted: 1\nsource: " + b.config + "\n" + b.sum + "\nwrite: refused\nunmounted\n"
	if got := stdout.String(); got != want {
		t.Fatalf("script output:\n%s\nwant:\n%s\nstderr:\n%s", got, want, stderr.String())
	}
	// The daemon's start lines went to its log, not to mount's caller.
	if daemonLog, _ := os.ReadFile(log); !strings.Contains(string(daemonLog), `"msg":"mounted"`) {
		t.Errorf("the daemon log lacks the mounted line:\n%s", daemonLog)
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

// testMountHelperErrors: through mount(8), as for the success above, a
// mistyped config path, a bad option and a config the loader refuses each
// give one line on stderr naming the problem, a non-zero exit, nothing on
// stdout and no mount. mount(8) adds rw when -o lacks ro; that is no error.
func testMountHelperErrors(t *testing.T, bin string) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cfg := filepath.Join(dir, "loader.yaml")
	os.WriteFile(cfg, []byte("api_url: http://127.0.0.1:1\ncache_dir: "+dir+"/cache\nlisten: 127.0.0.1:0\n"), 0o600)
	t.Cleanup(func() { killDaemons(t, cfg) })
	for _, tc := range []struct {
		name   string
		config string
		opts   []string
		code   int
		want   string
	}{
		{"missing config", filepath.Join(dir, "loadr.yaml"), []string{"-o", "ro"}, 1,
			"azaion-loader: config file " + filepath.Join(dir, "loadr.yaml") + ": no such file or directory\n"},
		{"unknown option", cfg, []string{"-o", "ro,frobnicate"}, 2,
			"azaion-loader: unknown mount option \"frobnicate\" (see 'azaion-loader help mount')\n"},
		{"log without a file", cfg, []string{"-o", "ro,log="}, 2,
			"azaion-loader: mount option log needs a file: log=FILE\n"},
		{"config refused, rw implied", cfg, nil, 1,
			"azaion-loader: config: resource_key or resource_key_file (AZAION_RESOURCE_KEY, AZAION_RESOURCE_KEY_FILE) is required\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append([]string{"--mount", "--propagation", "private", "sh", "-c",
				`mount --bind "$BIN_DIR" /usr/local/sbin && exec mount -t fuse.azaion-loader "$@"`, "sh", tc.config, mnt}, tc.opts...)
			cmd := exec.CommandContext(ctx, "unshare", args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "BIN_DIR=" + filepath.Dir(bin)}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tc.code || stdout.Len() != 0 || stderr.String() != tc.want {
				t.Fatalf("exit %d (%v), stdout %q, stderr:\n%s\nwant exit %d, no stdout, stderr:\n%s", code, err, stdout.String(), stderr.String(), tc.code, tc.want)
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
