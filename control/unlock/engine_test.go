package unlock

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The package's tests share one private Docker engine, started here and
// reached through DOCKER_HOST. TMPDIR is pointed at an empty private
// directory, so that a test can tell that nothing was left in it.
var (
	engineDir string // short: the unix socket path must stay under 108 bytes
	tmpDir    string // the tests' TMPDIR
	workDir   string // where tests put archives
)

func TestMain(m *testing.M) {
	os.Exit(runWithEngine(m))
}

func runWithEngine(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "unlock tests need root: they start a private dockerd (run them as root; CI does)")
		return 1
	}
	for _, bin := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			fmt.Fprintf(os.Stderr, "unlock tests need %s in PATH (Debian: apt-get install docker.io): %v\n", bin, err)
			return 1
		}
	}
	base := "/tmp"
	if d := os.TempDir(); len(d) < 40 {
		base = d
	}
	var err error
	engineDir, err = os.MkdirTemp(base, "ul")
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine dir:", err)
		return 1
	}
	defer removeEngineDir()
	tmpDir = filepath.Join(engineDir, "tmp")
	workDir = filepath.Join(engineDir, "work")
	for _, d := range []string{tmpDir, workDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}

	stop, err := startEngine()
	if err != nil {
		fmt.Fprintln(os.Stderr, "private dockerd:", err)
		return 1
	}
	defer stop()
	os.Setenv("TMPDIR", tmpDir)
	if err := buildFixture(); err != nil {
		fmt.Fprintln(os.Stderr, "test images:", err)
		return 1
	}
	return m.Run()
}

// startEngine starts dockerd on a socket in engineDir and waits (bounded)
// until `docker version` answers. stop sends SIGTERM, waits 30 s, then kills.
func startEngine() (stop func(), err error) {
	sock := filepath.Join(engineDir, "docker.sock")
	logf, err := os.Create(filepath.Join(engineDir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("dockerd",
		"--data-root", filepath.Join(engineDir, "data"),
		"--host", "unix://"+sock,
		"--pidfile", filepath.Join(engineDir, "docker.pid"),
		"--exec-root", filepath.Join(engineDir, "exec"),
		"--bridge=none", "--iptables=false", "--ip6tables=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "dockerd did not stop in 30 s; killing it")
			cmd.Process.Kill()
			<-exited
		}
	}
	os.Setenv("DOCKER_HOST", "unix://"+sock)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, "docker", "version").Run()
		cancel()
		if err == nil {
			return stop, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("dockerd exited: %s", logTail())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("no answer in 60 s: %s", logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func logTail() string {
	b, _ := os.ReadFile(filepath.Join(engineDir, "dockerd.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// removeEngineDir unmounts whatever the engine left mounted under engineDir
// and removes it.
func removeEngineDir() {
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		var mounts []string
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) > 4 && strings.HasPrefix(fields[4], engineDir+"/") {
				mounts = append(mounts, fields[4])
			}
		}
		f.Close()
		for i := len(mounts) - 1; i >= 0; i-- {
			syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	if err := os.RemoveAll(engineDir); err != nil {
		fmt.Fprintln(os.Stderr, "remove engine dir:", err)
	}
}

// docker runs the docker CLI against the private engine, bounded.
func docker(stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
