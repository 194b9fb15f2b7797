package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azaion/loader/control"
)

// run runs the built binary with env and args (bounded), stdin from stdin.
func runOps(t *testing.T, bin string, env []string, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	return cmd.ProcessState.ExitCode(), out.Bytes(), errb.String()
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testClients drives a running loader with the client subcommands, piped
// (no terminal: no progress lines, no prompts), and checks their bytes and
// exit codes.
func testClients(t *testing.T, bin string) {
	b := newOpsBed(t, 2<<20+777)
	startServe(t, bin, b, []string{"AZAION_IMAGES_PATH=" + filepath.Join(b.dir, "no-archive.enc"),
		"AZAION_IMAGES=azaion/none:0", "AZAION_DOCKER=/bin/false", "AZAION_PREFETCH=" + b.folder + "/" + b.name})
	env := append(b.env(), "AZAION_LISTEN="+b.listen)
	dir := t.TempDir()
	expect := func(wantCode int, stdin []byte, args ...string) ([]byte, string) {
		t.Helper()
		code, out, errs := runOps(t, bin, env, stdin, args...)
		if code != wantCode {
			t.Fatalf("azaion-loader %q: exit %d, want %d\nstdout: %.300s\nstderr: %s", args, code, wantCode, out, errs)
		}
		return out, errs
	}

	// The prefetch list is fetched after the login at start.
	size := int64(len(b.content))
	if it := waitPrefetchBytes(t, b.listen, b.folder, b.name, float64(size)); it.State != control.PrefetchDone || it.Bytes != size || it.Total != size {
		t.Fatalf("prefetch after the login at start: %+v, want done, %d bytes", it, size)
	}

	out, _ := expect(0, nil, "status", "--json")
	var st struct {
		Authenticated bool
		Unlock        struct{ State string }
	}
	if err := json.Unmarshal(out, &st); err != nil || !st.Authenticated || st.Unlock.State != "idle" {
		t.Fatalf("status --json: %s (%v)", out, err)
	}

	// load to a file and to a pipe: the exact bytes, nothing on stderr.
	file := filepath.Join(dir, "model.onnx")
	if _, errs := expect(0, nil, "load", b.folder+"/"+b.name, "-o", file); errs != "" {
		t.Errorf("load -o printed to a pipe's stderr: %q", errs)
	}
	if got, _ := os.ReadFile(file); sumHex(got) != b.sum {
		t.Fatalf("load -o: %d bytes, sha256 %s; want %s", len(got), sumHex(got), b.sum)
	}
	if out, _ := expect(0, nil, "load", b.folder+"/"+b.name); sumHex(out) != b.sum {
		t.Fatalf("load to stdout: %d bytes, wrong sha256", len(out))
	}
	// A missing resource: exit 4, and no file is left.
	expect(exitNotFound, nil, "load", b.folder+"/missing.onnx", "-o", filepath.Join(dir, "missing"))
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("a failed load left its output: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}

	// upload, then load it back.
	up := make([]byte, 1<<20+3)
	rand.Read(up)
	upFile := filepath.Join(dir, "upload.bin")
	os.WriteFile(upFile, up, 0o600)
	if out, _ := expect(0, nil, "upload", upFile, "--folder", b.folder, "--name", "uploaded.bin"); !strings.Contains(string(out), "uploaded "+b.folder+"/uploaded.bin") {
		t.Errorf("upload said %q", out)
	}
	if out, _ := expect(0, nil, "load", b.folder+"/uploaded.bin"); !bytes.Equal(out, up) {
		t.Fatalf("the uploaded file loads back as %d other bytes", len(out))
	}

	// login: from the environment; a wrong password is exit 3.
	expect(0, nil, "login", "--email", b.bed.Email, "--password-file", filepath.Join(b.credDir, "password"))
	os.WriteFile(filepath.Join(dir, "wrong"), []byte("wrong-password\n"), 0o600)
	expect(exitUnauthorized, nil, "login", "--email", b.bed.Email, "--password-file", filepath.Join(dir, "wrong"))
	// Without a terminal there is no prompt: a missing password is usage.
	expect(exitUsage, nil, "login", "--email", b.bed.Email)
	// Each login fetches the prefetch list again.
	waitPrefetchBytes(t, b.listen, b.folder, b.name, float64(2*size))

	// prefetch: waits until done, says so on stdout, nothing on a pipe's
	// stderr; a resource that fails is exit 6, the others still done.
	key := b.folder + "/" + b.name
	if out, errs := expect(0, nil, "prefetch", key); string(out) != fmt.Sprintf("%s: done, %d bytes\n", key, size) || errs != "" {
		t.Errorf("prefetch: stdout %q, stderr %q", out, errs)
	}
	out, _ = expect(exitPrefetchFailed, nil, "prefetch", b.folder+"/missing.onnx", key)
	if !strings.Contains(string(out), b.folder+"/missing.onnx: error: ") || !strings.Contains(string(out), key+": done, ") {
		t.Errorf("prefetch with a missing resource: stdout %q", out)
	}
	expect(exitUsage, nil, "prefetch")
	expect(exitUsage, nil, "prefetch", "no-slash")

	// unlock without an archive: 404, exit 4.
	os.WriteFile(filepath.Join(dir, "pw"), []byte(b.bed.Password), 0o600)
	expect(exitNotFound, nil, "unlock", "--email", b.bed.Email, "--password-file", filepath.Join(dir, "pw"))

	// Usage errors, and no loader at --addr.
	expect(exitUsage, nil, "load")
	expect(exitUsage, nil, "load", "no-slash")
	expect(exitUsage, nil, "upload", upFile)
	expect(exitUnreachable, nil, "status", "--addr", freeAddr(t))
}

// metricValue finds one sample's value in a Prometheus text exposition.
func metricValue(t *testing.T, text, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no sample %s in /metrics", sample)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testMetrics reads a resource through the mount and /load, and checks that
// GET /metrics counts what was served and fetched.
func testMetrics(t *testing.T, bin string) {
	b := newOpsBed(t, 3<<20+5)
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	startServe(t, bin, b, nil, "--mount", mnt)
	got, err := os.ReadFile(filepath.Join(mnt, b.folder, b.name))
	if err != nil || sumHex(got) != b.sum {
		t.Fatalf("read through the mount: %d bytes, %v", len(got), err)
	}
	env := append(b.env(), "AZAION_LISTEN="+b.listen)
	for range 2 {
		if code, out, errs := runOps(t, bin, env, nil, "load", b.folder+"/"+b.name); code != 0 || sumHex(out) != b.sum {
			t.Fatalf("load: exit %d, %s", code, errs)
		}
	}
	_, errs := os.ReadFile(filepath.Join(mnt, b.folder, "missing.onnx"))
	if errs == nil {
		t.Fatal("a missing resource opened")
	}
	code, text := httpGet(t, "http://"+b.listen+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	size := float64(len(b.content))
	for _, c := range []struct {
		sample   string
		min, max float64
	}{
		{"azaion_mount_served_bytes_total", size, size},
		{"azaion_load_served_bytes_total", 2 * size, 2 * size},
		{`azaion_logins_total{result="success"}`, 1, 1},
		{`azaion_http_requests_total{code="200",method="POST",route="/load/{filename}"}`, 2, 2},
		// The big part came from the CDN once, then from the disk cache.
		{`azaion_cache_read_bytes_total{source="cdn"}`, size * 0.7, size + 1<<20},
		{`azaion_cache_read_bytes_total{source="disk"}`, size, 1e12},
		{"azaion_cache_size_bytes", size * 0.7, size + 1<<20},
		{"azaion_cache_evictions_total", 0, 0},
		{"azaion_api_fetched_bytes_total", 1, 1 << 20},
		{"azaion_mount_read_duration_seconds_count", 1, 1e6},
		{`azaion_unlock_state{state="idle"}`, 1, 1},
		{`azaion_unlock_state{state="ready"}`, 0, 0},
		{"azaion_loader_logged_in", 1, 1},
		{`azaion_logins_total{result="failure"}`, 0, 0},
		{`azaion_backend_requests_total{backend="api",operation="login"}`, 1, 1},
		{`azaion_backend_failures_total{backend="api",kind="unreachable",operation="login"}`, 0, 0},
		{`azaion_backend_failures_total{backend="cdn",kind="timeout",operation="get"}`, 0, 0},
		{`azaion_mount_errors_total{errno="EIO"}`, 0, 0},
	} {
		if v := metricValue(t, text, c.sample); v < c.min || v > c.max {
			t.Errorf("%s = %v, want in [%v, %v]", c.sample, v, c.min, c.max)
		}
	}
	if !strings.Contains(text, "# TYPE azaion_mount_read_duration_seconds histogram") {
		t.Error("no read latency histogram")
	}
	if !strings.Contains(text, "# TYPE azaion_backend_request_duration_seconds histogram") {
		t.Error("no backend latency histogram")
	}
	// build_info names what `version` names.
	_, out, _ := runOps(t, bin, nil, nil, "version")
	m := regexp.MustCompile(`^azaion-loader (\S+) \(commit (\S+), go\S+\)\n$`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("version: %q is not \"azaion-loader VERSION (commit COMMIT, GO)\"", out)
	}
	version, commit := m[1], m[2]
	info := fmt.Sprintf(`azaion_loader_build_info{commit=%q,goversion=%q,version=%q}`, commit, runtime.Version(), version)
	if v := metricValue(t, text, info); v != 1 {
		t.Errorf("%s = %v, want 1", info, v)
	}
}
