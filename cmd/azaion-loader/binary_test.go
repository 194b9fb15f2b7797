package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/testbed"
)

// buildLoader builds the azaion-loader binary into a temp dir of t.
func buildLoader(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "azaion-loader")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv is this process's environment without any AZAION_ variable.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AZAION_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBinary runs bin to its end (within 30 s) and returns its exit code and
// output.
func runBinary(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return code, o.String(), e.String()
}

// TestBinary runs the built binary: the command line's help and errors,
// a config error as one line, and serve end to end against a testbed.
func TestBinary(t *testing.T) {
	bin := buildLoader(t)
	t.Run("CLI", func(t *testing.T) { testCLI(t, bin) })

	// A missing or malformed setting: exit 1 with one line naming it.
	for _, c := range []struct {
		env  []string
		name string
	}{
		{[]string{"AZAION_RESOURCE_KEY=k"}, "api_url"},
		{[]string{"AZAION_API_URL=http://127.0.0.1:1"}, "resource_key"},
		{[]string{"AZAION_API_URL=http://127.0.0.1:1", "AZAION_RESOURCE_KEY=k", "AZAION_API_TIMEOUT=fast"}, "AZAION_API_TIMEOUT"},
		{[]string{"AZAION_API_URL=http://127.0.0.1:1", "AZAION_RESOURCE_KEY=k", "AZAION_CONFIG=/nonexistent/loader.yaml"}, "/nonexistent/loader.yaml"},
	} {
		code, _, stderr := runBinary(t, bin, cleanEnv(c.env...), "serve")
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.name) {
			t.Errorf("serve with %q: exit %d, stderr %q; want exit 1 and one line naming %s", c.env, code, stderr, c.name)
		}
	}

	t.Run("serve", func(t *testing.T) { testServe(t, bin) })
}

// testServe starts `azaion-loader serve` configured by the environment
// against a testbed, logs in, uploads and loads through its control API,
// and stops it with SIGTERM.
func testServe(t *testing.T, bin string) {
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(bin, "serve")
	cmd.Env = cleanEnv(
		"AZAION_API_URL="+bed.APIURL,
		"AZAION_RESOURCE_KEY="+bed.ResourceKey,
		"AZAION_CACHE_DIR="+cacheDir,
		"AZAION_LISTEN=127.0.0.1:0",
		"AZAION_HARDWARE="+bed.Hardware,
		"AZAION_LOG_FORMAT=json",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var logs bytes.Buffer
	var logsMu sync.Mutex
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			logsMu.Lock()
			logs.Write(line)
			logs.WriteByte('\n')
			logsMu.Unlock()
			var v struct{ Msg, Addr string }
			if json.Unmarshal(line, &v) == nil && v.Msg == "control API listening" {
				addr <- v.Addr
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("serve exited at start: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not say where it listens within 20s")
	}

	hc := &http.Client{Timeout: time.Minute}
	post := func(path, ctype string, body io.Reader) (int, []byte) {
		t.Helper()
		resp, err := hc.Post(base+path, ctype, body)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return resp.StatusCode, b
	}
	if resp, err := hc.Get(base + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v %v", resp, err)
	}
	creds := fmt.Sprintf(`{"email":%q,"password":%q}`, bed.Email, bed.Password)
	if code, body := post("/login", "application/json", strings.NewReader(creds)); code != 200 || string(body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("/login: %d %s", code, body)
	}
	plain := bytes.Repeat([]byte("azaion model bytes "), 200_000) // 3.8 MB
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("folder", folder)
	fw, _ := mw.CreateFormFile("file", "model.onnx")
	fw.Write(plain)
	mw.Close()
	if code, body := post("/upload/model.onnx", mw.FormDataContentType(), &mp); code != 200 {
		t.Fatalf("/upload: %d %s", code, body)
	}
	code, body := post("/load/model.onnx", "application/json", strings.NewReader(fmt.Sprintf(`{"filename":"model.onnx","folder":%q}`, folder)))
	if code != 200 || sha256.Sum256(body) != sha256.Sum256(plain) {
		t.Fatalf("/load: %d, %d bytes, want the %d uploaded", code, len(body), len(plain))
	}
	if _, err := os.Stat(filepath.Join(cacheDir, folder, "model.onnx.big")); err != nil {
		t.Fatalf("the big part is not in cache_dir: %v", err)
	}

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not exit within 15s of SIGTERM")
	}
	logsMu.Lock()
	defer logsMu.Unlock()
	for _, secret := range []string{bed.Password, bed.ResourceKey} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a secret shows in serve's log:\n%s", logs.String())
		}
	}
	t.Logf("serve stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
