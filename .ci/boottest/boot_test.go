// Package boottest boots the loader's package under a real systemd: a
// Debian root (debootstrap, cached by .ci/boot-test) started with
// systemd-nspawn, the amd64 .deb installed in it with dpkg, MinIO and the
// reference Resource API on the host's loopback, which the container
// shares. check.sh, run inside by a unit ordered After=azaion-loader.service,
// drives the service, mnt-azaion.mount and an fstab line and writes what it
// found to a directory bound in from here. Run by .ci/boot-test (make
// boot-test, part of make test), as root.
package boottest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

func TestMain(m *testing.M) { cdntest.Main(m) }

// checks are the lines check.sh must write, in order, each "ok".
var checks = []string{
	"service-active", "service-credentials", "service-login-at-start", "service-host-mount-namespace",
	"service-mount-visible",
	"service-model-sha256", "service-version-logged", "service-stop-unmounts", "service-start-again",
	"service-kill9-restarts", "service-kill9-mount-again", "service-watchdog-restarts",
	"service-watchdog-logged", "service-watchdog-mount-again", "service-disabled",
	"mount-unit-start", "mount-unit-model-sha256", "mount-unit-stop-unmounts",
	"fstab-mount-a", "fstab-model-sha256", "fstab-umount", "fstab-umount-unmounts",
}

// bootTimeout bounds the whole boot, checks and power-off.
const bootTimeout = 4 * time.Minute

func TestBoot(t *testing.T) {
	base, deb := os.Getenv("AZAION_BOOT_ROOT"), os.Getenv("AZAION_BOOT_DEB")
	if base == "" || deb == "" {
		t.Fatal("AZAION_BOOT_ROOT (a debootstrap root) and AZAION_BOOT_DEB (the amd64 .deb) must be set: run .ci/boot-test")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the boot test needs root (systemd-nspawn, overlay mounts)")
	}

	// A model on the host's MinIO and Resource API.
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	plain := make([]byte, 3<<20+12345)
	rand.Read(plain)
	store := bed.LoggedIn(t, testbed.StoreOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := store.Upload(ctx, folder, "model.onnx", bytes.NewReader(plain)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	sum := sha256.Sum256(plain)

	// A fresh copy of the cached root: an overlay, so the cache stays clean.
	work := t.TempDir()
	root, out := filepath.Join(work, "root"), filepath.Join(work, "out")
	for _, d := range []string{"upper", "work", "root", "out"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", base, filepath.Join(work, "upper"), filepath.Join(work, "work"))
	if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
		t.Fatalf("overlay mount: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(root, 0); err != nil {
			syscall.Unmount(root, syscall.MNT_DETACH)
		}
	})
	machine := "azaion-boot-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { os.RemoveAll("/run/systemd/nspawn/propagate/" + machine) })

	write := func(path, text string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	debBytes, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	write("root/azaion-loader.deb", string(debBytes), 0o644)
	script, err := os.ReadFile("check.sh")
	if err != nil {
		t.Fatal(err)
	}
	write("usr/local/bin/azaion-boot-check", string(script), 0o755)
	write("etc/systemd/system/azaion-boot-check.service", `[Unit]
Description=azaion-loader boot test: the checks
After=azaion-loader.service

[Service]
Type=oneshot
ExecStart=/usr/local/bin/azaion-boot-check
ExecStopPost=/bin/sh -c 'journalctl -b --no-pager >/out/journal.txt 2>&1; systemctl poweroff --no-block'
TimeoutStartSec=3min

[Install]
WantedBy=multi-user.target
`, 0o644)
	listen := freeAddr(t)
	write("etc/azaion-boot-check.env", fmt.Sprintf("FOLDER=%s\nNAME=model.onnx\nSHA=%s\nLISTEN=%s\n", folder, hex.EncodeToString(sum[:]), listen), 0o644)

	// As README's systemd section: install the package, the secrets and the
	// config, enable the service. Only the watchdog and restart delays are
	// shorter, by a drop-in, so the test waits seconds and not minutes.
	nspawn := func(ctx context.Context, args ...string) *exec.Cmd {
		a := append([]string{"-q", "-D", root, "--register=no", "--keep-unit", "--machine=" + machine}, args...)
		return exec.CommandContext(ctx, "systemd-nspawn", a...)
	}
	if b, err := nspawn(ctx, "--", "dpkg", "-i", "/root/azaion-loader.deb").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i in the root: %v\n%s", err, b)
	}
	// A fresh machine may lack the mount point (a unit copied by hand, or
	// removed since): the service must create it.
	if err := os.Remove(filepath.Join(root, "mnt/azaion")); err != nil {
		t.Fatal(err)
	}
	write("etc/azaion/credentials/resource-key", bed.ResourceKey+"\n", 0o600)
	write("etc/azaion/credentials/password", bed.Password+"\n", 0o600)
	write("etc/azaion/loader.yaml", fmt.Sprintf(`api_url: %s
resource_key_file: resource-key
password_file: password
email: %s
hardware: %q
cache_dir: /var/cache/azaion-loader
listen: %s
folders: [%s]
allow_other: true
read_timeout: 30s
api_timeout: 30s
`, bed.APIURL, bed.Email, bed.Hardware, listen, folder), 0o640)
	write("etc/systemd/system/azaion-loader.service.d/boot-test.conf", "[Service]\nWatchdogSec=3s\nRestartSec=1s\n", 0o644)
	if b, err := nspawn(ctx, "--", "systemctl", "enable", "azaion-loader.service", "azaion-boot-check.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable in the root: %v\n%s", err, b)
	}

	// Boot; check.sh powers the container off when done.
	start := time.Now()
	bctx, bcancel := context.WithTimeout(context.Background(), bootTimeout)
	defer bcancel()
	var console bytes.Buffer
	boot := nspawn(bctx, "-b", "--bind=/dev/fuse", "--bind="+out+":/out")
	boot.Stdout, boot.Stderr = &console, &console
	boot.Cancel = func() error {
		killContainer(boot.Process.Pid)
		return boot.Process.Kill()
	}
	boot.WaitDelay = 10 * time.Second
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if boot.ProcessState == nil {
			killContainer(boot.Process.Pid)
			boot.Process.Kill()
			boot.Wait()
		}
	})
	err = boot.Wait()
	t.Logf("boot, checks and power-off: %s", time.Since(start).Round(100*time.Millisecond))
	result, _ := os.ReadFile(filepath.Join(out, "result"))
	if err != nil || !bytes.HasSuffix(result, []byte("done\n")) {
		journal, _ := os.ReadFile(filepath.Join(out, "journal.txt"))
		t.Errorf("the container ended with %v before all checks ran\nconsole:\n%s\njournal:\n%s", err, tail(console.String(), 60), tail(string(journal), 120))
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(result))
	for sc.Scan() {
		status, rest, _ := strings.Cut(sc.Text(), " ")
		name, why, _ := strings.Cut(rest, ": ")
		got[name] = status
		if status == "FAIL" {
			t.Errorf("%s: %s", name, why)
		}
	}
	for _, c := range checks {
		if got[c] != "ok" {
			t.Errorf("check %s: %q, want ok", c, got[c])
		}
	}
	if t.Failed() {
		journal, _ := os.ReadFile(filepath.Join(out, "journal.txt"))
		t.Logf("result:\n%s\njournal (end):\n%s", result, tail(string(journal), 150))
	}
}

// killContainer kills the container's init (nspawn's children), and so
// every process of its PID namespace.
func killContainer(nspawnPID int) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawnPID, nspawnPID))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// freeAddr is a loopback address nothing listens on, for the control API
// in the container, which shares the host's loopback.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
