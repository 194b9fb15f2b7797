// Package dockertest runs a private Docker engine for tests: dockerd on a
// socket of its own, with a temporary data root and no networking
// (--bridge=none --iptables=false --ip6tables=false), so that tests can
// `docker load` and `docker image inspect` without touching the host's
// engine. Nothing can be pulled; tests build their images with BuildImage
// (`docker import` of a tiny root file system) or WriteImageTar.
//
// It needs root and the dockerd and docker binaries (Debian: docker.io);
// without root the tests that ask for an engine are skipped.
package dockertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of the engine's start and stop and of one CLI call.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
	callTimeout  = 60 * time.Second
)

// baseDir holds the engines' directories: the temporary directory as the
// process started (tests may point TMPDIR elsewhere to watch it stay empty),
// unless that is too long for a unix socket path (108 bytes).
var baseDir = func() string {
	if d := os.TempDir(); len(d) < 40 {
		return d
	}
	return "/tmp"
}()

// Engine is a running private dockerd.
type Engine struct {
	// Host is the engine's DOCKER_HOST, unix://<dir>/docker.sock.
	Host string
	dir  string

	proc     *os.Process
	exited   chan struct{}
	stopOnce sync.Once
}

// Start runs a private engine for t, stops it when t ends, and points
// DOCKER_HOST at it for t (t.Setenv: t must not be parallel). Without root
// it skips t.
func Start(t testing.TB) *Engine {
	t.Helper()
	skipUnlessRoot(t)
	e, err := start()
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	t.Cleanup(e.Stop)
	t.Setenv("DOCKER_HOST", e.Host)
	return e
}

var shared struct {
	inMain bool
	once   sync.Once
	e      *Engine
	err    error
}

// Main runs a test package with at most one engine for all its tests,
// started by the first Shared call (so tests that never ask for one pay
// nothing) and stopped after the last test:
//
//	func TestMain(m *testing.M) { dockertest.Main(m) }
//
// A package that needs another harness's Main too calls m.Run itself and
// then Cleanup.
func Main(m *testing.M) {
	shared.inMain = true
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup stops the shared engine, if one was started, and removes its
// directory. It is for a TestMain that runs m.Run itself; call SetMain
// before m.Run.
func Cleanup() {
	if shared.e != nil {
		shared.e.Stop()
	}
}

// SetMain tells Shared that a TestMain will call Cleanup after m.Run, so
// that Shared starts one engine for the whole package.
func SetMain() { shared.inMain = true }

// Shared returns the package's engine under Main (or SetMain and Cleanup),
// starting it on first use and pointing the process's DOCKER_HOST at it;
// without Main it is Start(t). Tests sharing it should use image names of
// their own, or remove what they load. Without root it skips t.
func Shared(t testing.TB) *Engine {
	t.Helper()
	if !shared.inMain {
		return Start(t)
	}
	skipUnlessRoot(t)
	shared.once.Do(func() {
		shared.e, shared.err = start()
		if shared.err == nil {
			os.Setenv("DOCKER_HOST", shared.e.Host)
		}
	})
	if shared.err != nil {
		t.Fatalf("dockertest: %v", shared.err)
	}
	return shared.e
}

func skipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dockertest: a private dockerd needs root (CI runs as root)")
	}
}

// Launch starts a private dockerd for callers without a testing.TB (the
// benchmark), which Stop it.
func Launch() (*Engine, error) { return start() }

// start launches dockerd on a socket in a fresh short directory and waits,
// bounded, until `docker version` answers.
func start() (*Engine, error) {
	for _, bin := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is not in PATH (Debian: apt-get install docker.io): %w", bin, err)
		}
	}
	dir, err := os.MkdirTemp(baseDir, "dt")
	if err != nil {
		return nil, err
	}
	e := &Engine{Host: "unix://" + filepath.Join(dir, "docker.sock"), dir: dir, exited: make(chan struct{})}
	if err := e.launch(); err != nil {
		e.removeDir()
		return nil, err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		_, err := e.Docker(nil, "version")
		if err == nil {
			return e, nil
		}
		select {
		case <-e.exited:
			tail := e.logTail()
			e.removeDir()
			return nil, fmt.Errorf("dockerd exited: %s", tail)
		default:
		}
		if time.Now().After(deadline) {
			tail := e.logTail()
			e.Stop()
			return nil, fmt.Errorf("dockerd did not answer in %v: %v: %s", startTimeout, err, tail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// launch starts dockerd from a goroutine locked to its OS thread for the
// daemon's whole life: Pdeathsig fires when the thread that started the
// child ends, so the kernel stops dockerd only when the test binary dies
// without its cleanups, never because Go retired a thread.
func (e *Engine) launch() error {
	logf, err := os.Create(filepath.Join(e.dir, "dockerd.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command("dockerd",
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "docker.pid"),
		"--host", e.Host,
		"--bridge=none", "--iptables=false", "--ip6tables=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
		logf.Close()
		close(e.exited)
	}()
	if err := <-started; err != nil {
		<-e.exited
		return fmt.Errorf("start dockerd: %w", err)
	}
	e.proc = cmd.Process
	return nil
}

// Stop sends dockerd SIGTERM, waits up to 30 s (then kills it), unmounts
// whatever it left under its directory and removes the directory. It is
// safe to call more than once.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() {
		e.proc.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(stopTimeout):
			fmt.Fprintf(os.Stderr, "dockertest: dockerd did not stop in %v; killing it\n", stopTimeout)
			e.proc.Kill()
			<-e.exited
		}
		e.removeDir()
	})
}

// Dir is the engine's private directory (socket, data root, log).
func (e *Engine) Dir() string { return e.dir }

// StagingDir is the data root's tmp directory, where the daemon stages a
// `docker load` while it reads it; a load that ended, well or not, leaves
// nothing there.
func (e *Engine) StagingDir() string { return filepath.Join(e.dir, "data", "tmp") }

// Docker runs the docker CLI against this engine (whatever DOCKER_HOST
// says), with stdin when not nil, bounded by a minute. The error carries
// docker's stderr.
func (e *Engine) Docker(stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.Host)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (e *Engine) logTail() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "dockerd.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// removeDir unmounts whatever the engine left mounted under its directory
// and removes the directory.
func (e *Engine) removeDir() {
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		var mounts []string
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) > 4 && strings.HasPrefix(fields[4], e.dir+"/") {
				mounts = append(mounts, fields[4])
			}
		}
		f.Close()
		for i := len(mounts) - 1; i >= 0; i-- {
			syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(e.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "dockertest: remove engine dir:", err)
	}
}
