package fs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// TestStackKillAndRecover runs the real azaion-loader serve with a mount,
// makes a read wait on a stalled CDN and kills the loader with SIGKILL: the
// reader gets an error at once instead of hanging. A new loader on the same
// mount point cleans the stale mount up and serves the file; SIGTERM then
// unmounts it and the loader exits 0.
func TestStackKillAndRecover(t *testing.T) {
	s := newStack(t, testbed.Options{ProxyCDN: true})
	src := newPattern(7, 8<<20+9)
	sum := s.upload(t, nil, "model.onnx", src)
	bin := buildLoader(t)
	mnt, cacheDir := t.TempDir(), t.TempDir()
	t.Cleanup(func() { // only after a failure: the checks below want it gone
		if mounted, _ := isMountPoint(mnt); mounted {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	p := filepath.Join(mnt, s.folder, "model.onnx")

	first := startServe(t, s, bin, mnt, cacheDir)
	f := waitOpen(t, p, first)
	defer f.Close()
	s.bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Stall})
	read := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 4096), 4<<20+100)
		read <- err
	}()
	select {
	case err := <-read:
		t.Fatalf("the read did not wait for the stalled CDN: %v", err)
	case <-time.After(time.Second):
	}
	first.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("the read succeeded after the loader was killed")
		}
		t.Logf("the waiting reader got: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("the reader still waits 15 s after the loader was killed")
	}
	first.wait(t, 10*time.Second)
	f.Close()
	s.bed.CDNProxy.Clear()
	if _, err := os.Stat(p); !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
		t.Errorf("stat on the dead mount: %v, want ENOTCONN", err)
	}

	second := startServe(t, s, bin, mnt, cacheDir)
	waitOpen(t, p, second).Close()
	if got, n := fileSum(t, p); got != sum || n != src.size {
		t.Errorf("through the recovered mount: %d bytes, SHA-256 differs: %v", n, got != sum)
	}
	if !strings.Contains(second.log.String(), "stale mount") {
		t.Errorf("the second loader did not say it detached a stale mount:\n%s", second.log)
	}
	second.cmd.Process.Signal(syscall.SIGTERM)
	if code := second.wait(t, 20*time.Second); code != 0 {
		t.Errorf("after SIGTERM the loader exited %d, want 0:\n%s", code, second.log)
	}
	if mounted, err := isMountPoint(mnt); mounted || err != nil {
		t.Errorf("after SIGTERM the mount is still there (%v)", err)
	}
	for _, l := range []*loaderProc{first, second} {
		for _, secret := range []string{s.bed.Password, s.bed.ResourceKey} {
			if strings.Contains(l.log.String(), secret) {
				t.Errorf("a secret appears in the loader's log")
			}
		}
	}
}

// buildLoader builds cmd/azaion-loader into a temporary directory.
func buildLoader(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "azaion-loader")
	out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/azaion-loader").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/azaion-loader: %v\n%s", err, out)
	}
	return bin
}

// loaderProc is a running azaion-loader serve.
type loaderProc struct {
	cmd    *exec.Cmd
	log    *logBuf
	exited chan struct{}
}

// startServe starts azaion-loader serve on mnt, configured through the
// environment to log in at start; it is killed when the test ends.
func startServe(t *testing.T, s *stack, bin, mnt, cacheDir string) *loaderProc {
	t.Helper()
	l := &loaderProc{cmd: exec.Command(bin, "serve"), log: &logBuf{}, exited: make(chan struct{})}
	l.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"AZAION_API_URL=" + s.bed.APIURL,
		"AZAION_RESOURCE_KEY=" + s.bed.ResourceKey,
		"AZAION_CACHE_DIR=" + cacheDir,
		"AZAION_LISTEN=127.0.0.1:0",
		"AZAION_MOUNT=" + mnt,
		"AZAION_FOLDERS=" + s.folder,
		"AZAION_HARDWARE=" + s.bed.Hardware,
		"AZAION_EMAIL=" + s.bed.Email,
		"AZAION_PASSWORD=" + s.bed.Password,
		"AZAION_READ_TIMEOUT=2m", // the stalled read waits for the kill, not for this
	}
	l.cmd.Stdout, l.cmd.Stderr = l.log, l.log
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		l.cmd.Wait()
		close(l.exited)
	}()
	t.Cleanup(func() {
		l.cmd.Process.Kill()
		<-l.exited
	})
	return l
}

// wait waits (bounded) for the loader to exit and returns its exit code.
func (l *loaderProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-l.exited:
		return l.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("the loader has not exited after %v:\n%s", d, l.log)
		return -1
	}
}

// waitOpen opens p once the loader serves it (mounted and logged in).
func waitOpen(t *testing.T, p string, l *loaderProc) *os.File {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.Open(p)
		if err == nil {
			return f
		}
		select {
		case <-l.exited:
			t.Fatalf("the loader exited (%v):\n%s", l.cmd.ProcessState, l.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not open within 30 s: %v\n%s", p, err, l.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
