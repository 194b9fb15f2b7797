package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/testbed"
)

// TestOps runs the built binary as operators do: through mount(8)'s FUSE
// helper, under systemd's notify protocol, and with the client
// subcommands and the examples against a running loader. One build serves
// every subtest.
func TestOps(t *testing.T) {
	needMount(t)
	bin := buildLoader(t)
	t.Run("MountHelper", func(t *testing.T) { testMountHelper(t, bin) })
	t.Run("MountHelperErrors", func(t *testing.T) { testMountHelperErrors(t, bin) })
	t.Run("ServeNotifiesSystemd", func(t *testing.T) { testServeNotifiesSystemd(t, bin) })
	t.Run("Clients", func(t *testing.T) { testClients(t, bin) })
	t.Run("ClientsOnTerminal", func(t *testing.T) { testClientsOnTerminal(t, bin) })
	t.Run("Metrics", func(t *testing.T) { testMetrics(t, bin) })
	t.Run("Examples", func(t *testing.T) { testExamples(t, bin) })
}

// needMount skips a test that mounts when it cannot.
func needMount(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for real mounts")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// opsBed is a testbed with one uploaded resource and a loader config that
// logs in at start, its password read from a systemd credentials directory.
type opsBed struct {
	bed            *testbed.Bed
	folder, name   string
	content        []byte
	sum            string
	config, listen string
	credDir        string
	dir            string
}

func newOpsBed(t *testing.T, size int) *opsBed {
	t.Helper()
	bed := testbed.New(t, testbed.Options{})
	b := &opsBed{bed: bed, folder: bed.NewFolder(t), name: "model.onnx", content: make([]byte, size), dir: t.TempDir()}
	rand.Read(b.content)
	s := sha256.Sum256(b.content)
	b.sum = hex.EncodeToString(s[:])
	store := bed.LoggedIn(t, testbed.StoreOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := store.Upload(ctx, b.folder, b.name, bytes.NewReader(b.content)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	b.listen = freeAddr(t)
	b.credDir = filepath.Join(b.dir, "credentials")
	os.Mkdir(b.credDir, 0o700)
	os.WriteFile(filepath.Join(b.credDir, "password"), []byte(bed.Password+"\n"), 0o600)
	os.WriteFile(filepath.Join(b.credDir, "resource-key"), []byte(bed.ResourceKey+"\n"), 0o600)
	b.config = filepath.Join(b.dir, "loader.yaml")
	cfg := fmt.Sprintf("api_url: %s\nresource_key_file: resource-key\ncache_dir: %s\nlisten: %s\nhardware: %q\nemail: %s\npassword_file: password\nfolders: [%s]\napi_timeout: 10s\nread_timeout: 10s\n",
		bed.APIURL, filepath.Join(b.dir, "cache"), b.listen, bed.Hardware, bed.Email, b.folder)
	if err := os.WriteFile(b.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// env is the environment of a loader run on the bed.
func (b *opsBed) env(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CREDENTIALS_DIRECTORY=" + b.credDir}
	return append(env, extra...)
}

// waitGone waits until nothing listens on addr.
func waitGone(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the loader still listens on %s after %s", addr, within)
}

// serveProc is `azaion-loader serve` run by a test, ready when started.
type serveProc struct {
	cmd    *exec.Cmd
	log    string
	exited chan error
}

// startServe runs serve with the config and args, and waits (bounded) for
// its ready signal on the AZAION_READY_FD pipe: the mount is live and the
// control API listens. It is stopped with SIGTERM when t ends.
func startServe(t *testing.T, bin string, b *opsBed, env []string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{log: filepath.Join(t.TempDir(), "loader.log"), exited: make(chan error, 1)}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.cmd = exec.Command(bin, append([]string{"serve", "--config", b.config}, args...)...)
	p.cmd.Env = append(append(b.env(), env...), readyFDEnv+"=3", helperLogEnv+"="+p.log)
	p.cmd.ExtraFiles = []*os.File{w}
	var stderr bytes.Buffer
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 16)
		n, _ := r.Read(buf)
		got <- string(buf[:n])
	}()
	select {
	case s := <-got:
		if s != "ready\n" {
			t.Fatalf("ready pipe: %q; stderr:\n%s", s, stderr.String())
		}
	case err := <-p.exited:
		t.Fatalf("serve exited before ready: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve not ready within 60s:\n%s", stderr.String())
	}
	return p
}

// stop sends SIGTERM and waits (bounded) for the process to exit.
func (p *serveProc) stop(t *testing.T) error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("serve did not stop within 30s of SIGTERM")
		return <-p.exited
	}
}

func (p *serveProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
