package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestVersionReported builds the binary as `make build` does, with the
// version and commit set by -ldflags -X, and finds them in --version, in
// the first log line of serve and in GET /status.
func TestVersionReported(t *testing.T) {
	const version, commit = "v9.8.7-6-gabcdef0-dirty", "abcdef0123456789abcdef0123456789abcdef01"
	bin := filepath.Join(t.TempDir(), "azaion-loader")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pkg := "github.com/azaion/loader/cmd/internal/buildinfo"
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".version="+version+" -X "+pkg+".commit="+commit, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := "azaion-loader " + version + " (commit " + commit + ", " + runtime.Version() + ")\n"
	for _, arg := range []string{"--version", "version"} {
		code, stdout, stderr := runBinary(t, bin, cleanEnv(), arg)
		if code != 0 || stdout != want || stderr != "" {
			t.Errorf("azaion-loader %s: exit %d, stdout %q, stderr %q; want exit 0, stdout %q", arg, code, stdout, stderr, want)
		}
	}

	// serve without a mount or a login at start: nothing it talks to
	// needs to exist for its first log line and /status.
	cmd := exec.Command(bin, "serve")
	cmd.Env = cleanEnv("AZAION_API_URL=http://127.0.0.1:1", "AZAION_RESOURCE_KEY=k",
		"AZAION_CACHE_DIR="+filepath.Join(t.TempDir(), "cache"), "AZAION_LISTEN=127.0.0.1:0",
		"AZAION_HARDWARE=test", "AZAION_LOG_FORMAT=json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan []byte, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	next := func() map[string]any {
		t.Helper()
		select {
		case l, ok := <-lines:
			var v map[string]any
			if !ok || json.Unmarshal(l, &v) != nil {
				t.Fatalf("serve: log line %q (open %v): not JSON", l, ok)
			}
			return v
		case <-time.After(20 * time.Second):
			t.Fatal("serve: no log line within 20s")
		}
		return nil
	}
	first := next()
	if first["version"] != version || first["commit"] != commit || first["go"] != runtime.Version() {
		t.Fatalf("first log line %v: want version %q, commit %q, go %q", first, version, commit, runtime.Version())
	}
	var addr string
	for addr == "" {
		if v := next(); v["msg"] == "control API listening" {
			addr, _ = v["addr"].(string)
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Status, Version string }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil || st.Version != version {
		t.Fatalf("/status: %d, version %q; want 200 and %q", resp.StatusCode, st.Version, version)
	}
}
