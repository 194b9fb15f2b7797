package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testExamples runs examples/ against a live loader: open_model.py loads
// a real ONNX model from the mount, client.py logs in, loads, uploads (a
// 200 MB file streamed, its peak memory far below the file's size) and
// fails a load cleanly, and curl.sh walks through the API.
func testExamples(t *testing.T, bin string) {
	ex, _ := filepath.Abs("../../examples")
	// The interpreters themselves, not a version manager's slow shim: one
	// with onnx (Debian's python3-onnx), one with requests.
	var pythons []string
	if exe, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output(); err == nil {
		pythons = append(pythons, strings.TrimSpace(string(exe)))
	}
	pythons = append(pythons, "/usr/bin/python3")
	withModule := func(mod, pkg string) string {
		for _, p := range pythons {
			if exec.Command(p, "-c", "import "+mod).Run() == nil {
				return p
			}
		}
		t.Fatalf("no python3 has %s: run .ci/deps (it installs %s)", mod, pkg)
		return ""
	}
	pyONNX, pyReq := withModule("onnx", "python3-onnx"), withModule("requests", "python3-requests")
	cache := t.TempDir()
	for _, f := range []string{"client.py", "open_model.py"} {
		cmd := exec.Command(pyReq, "-c", fmt.Sprintf("import py_compile,sys; py_compile.compile(%q, cfile=%q, doraise=True)", filepath.Join(ex, f), filepath.Join(cache, f+"c")))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("py_compile %s: %v\n%s", f, err, out)
		}
	}
	b := newOpsBed(t, 5<<20+3)
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	startServe(t, bin, b, []string{"AZAION_IMAGES_PATH=" + filepath.Join(b.dir, "no-archive.enc"),
		"AZAION_IMAGES=azaion/none:0", "AZAION_DOCKER=/bin/false"}, "--mount", mnt)
	env := append(b.env(), "AZAION_LISTEN="+b.listen, "AZAION_EMAIL="+b.bed.Email, "AZAION_PASSWORD="+b.bed.Password)
	// run runs a script and returns its exit code and output.
	run := func(python, script string, args ...string) (int, string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, append([]string{"-B", filepath.Join(ex, script)}, args...)...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s %q: %v", script, args, err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	ok := func(python, script string, args ...string) string {
		t.Helper()
		code, out, errs := run(python, script, args...)
		if code != 0 {
			t.Fatalf("%s %q: exit %d\n%s\n%s", script, args, code, out, errs)
		}
		return out
	}
	client := func(args ...string) string { t.Helper(); return ok(pyReq, "client.py", args...) }

	if got := client("login"); got != `{"status": "ok"}`+"\n" {
		t.Fatalf("client.py login: %q, want JSON", got)
	}
	var st struct {
		Status        string
		Authenticated bool
	}
	if got := client("status"); json.Unmarshal([]byte(got), &st) != nil || st.Status != "healthy" || !st.Authenticated {
		t.Fatalf("client.py status: %q, want JSON, healthy and authenticated", got)
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "loaded")
	if got := client("load", b.folder+"/"+b.name, "-o", out); got != fmt.Sprintf("%d bytes\n", len(b.content)) {
		t.Fatalf("client.py load: %q", got)
	}
	if data, _ := os.ReadFile(out); sumHex(data) != b.sum {
		t.Fatal("client.py load: wrong bytes")
	}

	// A failed load leaves nothing: no output file, no temp file.
	failed := filepath.Join(outDir, "missing")
	if code, stdout, stderr := run(pyReq, "client.py", "load", b.folder+"/missing.onnx", "-o", failed); code != 4 || stdout != "" || !strings.Contains(stderr, "404") {
		t.Fatalf("client.py load of a missing resource: exit %d, %q, %q; want 4 and the 404 on stderr", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 1 || ents[0].Name() != "loaded" {
		t.Fatalf("after a failed load the output directory holds %v, want only the earlier output", ents)
	}

	// A real ONNX model, uploaded with client.py and loaded from the mount
	// with onnx.
	model := demoONNX()
	modelPath := filepath.Join(t.TempDir(), demoONNXName)
	os.WriteFile(modelPath, model, 0o600)
	if got := client("upload", modelPath, "--folder", b.folder); got != `{"status": "ok"}`+"\n" {
		t.Fatalf("client.py upload: %q", got)
	}
	sum := sha256.Sum256(model)
	want := fmt.Sprintf("%d %s\n", len(model), hex.EncodeToString(sum[:])) +
		"onnx: ir_version 8, opset 13, producer \"azaion-loader demo\", 3 nodes\n" +
		"input  features float[N,4]\n" +
		"output scores float[N,3]\n"
	if got := ok(pyONNX, "open_model.py", filepath.Join(mnt, b.folder, demoONNXName)); got != want {
		t.Fatalf("open_model.py: %q, want %q", got, want)
	}
	// Random bytes named .onnx are refused as a model, after their hash.
	code, got, errs := run(pyONNX, "open_model.py", filepath.Join(mnt, b.folder, b.name))
	if code != 1 || got != fmt.Sprintf("%d %s\n", len(b.content), b.sum) || !strings.Contains(errs, "not a valid ONNX model") {
		t.Fatalf("open_model.py of random bytes: exit %d, %q, %q", code, got, errs)
	}

	testStreamedUpload(t, pyReq, filepath.Join(ex, "client.py"), env, b.folder, filepath.Join(mnt, b.folder))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", filepath.Join(ex, "curl.sh"))
	cmd.Env = append(b.env(), "ADDR="+b.listen, "EMAIL="+b.bed.Email, "PASSWORD="+b.bed.Password, "FOLDER="+b.folder)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl.sh: %v\n%s", err, outb)
	}
	for _, s := range []string{"== GET /openapi.json", " done 3000000 of 3000000", "/health /load/{filename} /login /metrics /openapi.json /prefetch /status /unlock /unlock/status /upload/{filename}", "\n404 "} {
		if !strings.Contains(string(outb), s) {
			t.Errorf("curl.sh output lacks %q:\n%s", s, outb)
		}
	}
}

// testStreamedUpload uploads a 200 MB file with client.py and checks that
// the Python process's peak RSS (VmHWM, and the kernel's rusage) stays far
// below the file's size, and that the mount reads the exact bytes back.
func testStreamedUpload(t *testing.T, python, client string, env []string, folder, dir string) {
	const size = 200_000_000
	up := filepath.Join(t.TempDir(), "big-upload.bin")
	f, err := os.Create(up)
	if err != nil {
		t.Fatal(err)
	}
	pat := make([]byte, 1<<20)
	for i := range pat {
		pat[i] = byte(i * 7 % 251)
	}
	h := sha256.New()
	for n := 0; n < size; n += len(pat) {
		p := pat[:min(len(pat), size-n)]
		f.Write(p)
		h.Write(p)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wantSum := [32]byte(h.Sum(nil))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-B", client, "upload", up, "--folder", folder)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := make(chan int64, 1)
	stop := make(chan struct{})
	go func() {
		var max int64
		defer func() { peak <- max }()
		for {
			if kb := vmHWM(cmd.Process.Pid); kb > max {
				max = kb
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	close(stop)
	hwm := <-peak << 10
	if err != nil || stdout.String() != `{"status": "ok"}`+"\n" {
		t.Fatalf("client.py upload of %d bytes: %v, %q\n%s", size, err, stdout.String(), stderr.String())
	}
	// VmHWM is the python process's own high-water mark, sampled while it
	// runs (it only grows). Not rusage's maxrss: with Go's vfork-style
	// start it also holds the test binary's RSS from before the exec.
	t.Logf("client.py uploading %d bytes: VmHWM %d MB", size, hwm>>20)
	if hwm == 0 {
		t.Fatal("VmHWM of the python process never read")
	}
	if hwm >= 100<<20 {
		t.Fatalf("client.py peaked at %d MB uploading %d MB: the body is not streamed", hwm>>20, size>>20)
	}

	got, err := os.Open(filepath.Join(dir, "big-upload.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	gh := sha256.New()
	if n, err := io.CopyBuffer(gh, got, make([]byte, 1<<20)); err != nil || n != size || [32]byte(gh.Sum(nil)) != wantSum {
		t.Fatalf("the uploaded file through the mount: %d bytes, %v, SHA-256 equal %v", n, err, [32]byte(gh.Sum(nil)) == wantSum)
	}
}

// vmHWM is a process's peak resident set size in KiB, from
// /proc/PID/status; 0 once the process is gone.
func vmHWM(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
