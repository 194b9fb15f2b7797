package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azaion/loader/resources"
)

// sealFiles writes a fragment file and a tar-like input in a fresh dir.
func sealFiles(t *testing.T) (dir, fragPath, inPath string, fragment, plain []byte) {
	t.Helper()
	dir = t.TempDir()
	fragment = []byte("fragment-bytes\x00\xff-no-newline-trimmed\n")
	plain = make([]byte, 300<<10+3)
	rand.Read(plain)
	fragPath, inPath = filepath.Join(dir, "fragment.bin"), filepath.Join(dir, "images.tar")
	if err := os.WriteFile(fragPath, fragment, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	return
}

func openArchive(t *testing.T, archive, fragment []byte) []byte {
	t.Helper()
	// PROTOCOL §5: the key is SHA-256 of the fragment's exact bytes.
	plain, err := resources.DecryptKey(resources.AESKey(string(fragment)), archive)
	if err != nil {
		t.Fatalf("archive does not decrypt: %v", err)
	}
	return plain
}

func TestSealFileToFile(t *testing.T) {
	dir, fragPath, inPath, fragment, plain := sealFiles(t)
	out := filepath.Join(dir, "images.enc")
	var stdout, stderr bytes.Buffer
	if err := runSeal([]string{"--fragment", fragPath, "-o", out, inPath}, strings.NewReader("unused"), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want both empty (stderr is no terminal)", stdout.String(), stderr.String())
	}
	archive, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(archive)) != resources.CipherLen(int64(len(plain))) {
		t.Errorf("archive of %d bytes, want %d", len(archive), resources.CipherLen(int64(len(plain))))
	}
	if !bytes.Equal(openArchive(t, archive, fragment), plain) {
		t.Error("archive does not hold the tar")
	}
	if got, want := listNames(t, dir), []string{"fragment.bin", "images.enc", "images.tar"}; !slices.Equal(got, want) {
		t.Errorf("dir holds %v, want %v", got, want)
	}
}

func TestSealStdinToStdout(t *testing.T) {
	_, fragPath, _, fragment, plain := sealFiles(t)
	for _, args := range [][]string{{"--fragment", fragPath}, {"--fragment", fragPath, "-"}} {
		var stdout, stderr bytes.Buffer
		if err := runSeal(args, bytes.NewReader(plain), &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !bytes.Equal(openArchive(t, stdout.Bytes(), fragment), plain) || stderr.Len() != 0 {
			t.Errorf("%v: wrong archive on stdout, or stderr %q", args, stderr.String())
		}
	}
}

func TestSealHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := runSeal([]string{"--help"}, nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
		t.Errorf("--help = %v, want flag.ErrHelp (exit 0)", err)
	}
	for _, want := range []string{"Usage: azaion-loader seal --fragment FILE [-o OUT] [TAR|-]", "Example:", "\n  --fragment FILE ", "\n  -o OUT ", "docker save"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help on stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("help wrote to stderr: %q", stderr.String())
	}
}

func TestSealErrors(t *testing.T) {
	dir, fragPath, inPath, _, _ := sealFiles(t)
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "images.enc")
	if err := os.WriteFile(out, []byte("the previous archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listNames(t, dir)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{inPath}, 2, "seal: --fragment is required"},
		{[]string{"--fragment", fragPath, inPath, "extra"}, 2, `seal: unexpected argument "extra"`},
		{[]string{"--bogus"}, 2, "seal: unknown flag --bogus"},
		{[]string{"--fragment", filepath.Join(dir, "nope"), "-o", out, inPath}, 1, "seal: read the key fragment: open "},
		{[]string{"--fragment", empty, "-o", out, inPath}, 1, "seal: the key fragment file " + empty + " is empty"},
		{[]string{"--fragment", fragPath, "-o", out, filepath.Join(dir, "missing.tar")}, 1, "seal: open " + filepath.Join(dir, "missing.tar")},
		{[]string{"--fragment", fragPath, "-o", out, dir}, 1, "seal: read "}, // a directory as the tar
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		err := runSeal(tc.args, nil, &stdout, &stderr)
		if err == nil || exitCode(err) != tc.code || !strings.HasPrefix(err.Error(), tc.msg) {
			t.Errorf("%v: error %v (exit %d), want exit %d and %q", tc.args, err, exitCode(err), tc.code, tc.msg)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote %d bytes to stdout", tc.args, stdout.Len())
		}
	}
	if got := listNames(t, dir); !slices.Equal(got, before) {
		t.Errorf("dir holds %v after failures, want %v", got, before)
	}
	if prev, _ := os.ReadFile(out); string(prev) != "the previous archive" {
		t.Errorf("a failed seal changed OUT to %d bytes", len(prev))
	}
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// /dev/null is a character device but no terminal: sealing into it works.
func TestSealToDevNull(t *testing.T) {
	_, fragPath, inPath, _, _ := sealFiles(t)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if err := runSeal([]string{"--fragment", fragPath, inPath}, nil, null, null); err != nil {
		t.Errorf("seal to /dev/null: %v", err)
	}
}

// TestSealBinary runs the built azaion-loader as a packager and an operator
// would: seal from a file and from a pipe, the progress line on a terminal,
// the exit codes; and serve handing the unlock settings (YAML, environment,
// DOCKER_HOST) to the unlock task that POST /unlock runs.
func TestSealBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "azaion-loader")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("file to file", func(t *testing.T) { testSealBinaryFile(t, bin) })
	t.Run("pipe", func(t *testing.T) { testSealBinaryPipe(t, bin) })
	t.Run("progress on a terminal", func(t *testing.T) { testSealBinaryTerminal(t, bin) })
	t.Run("serve unlock settings", func(t *testing.T) { testServeUnlockSettings(t, bin) })
}

// sealRun runs bin with args, stdin and a clean environment, bounded.
func sealRun(t *testing.T, bin string, stdin io.Reader, args ...string) (code int, stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%v: %v", args, err)
	}
	return code, o.Bytes(), e.Bytes()
}

func testSealBinaryFile(t *testing.T, bin string) {
	dir, fragPath, inPath, fragment, plain := sealFiles(t)
	out := filepath.Join(dir, "images.enc")
	code, stdout, stderr := sealRun(t, bin, nil, "seal", "--fragment", fragPath, "-o", out, inPath)
	if code != 0 || len(stdout) != 0 || len(stderr) != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and silence", code, stdout, stderr)
	}
	archive, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(openArchive(t, archive, fragment), plain) {
		t.Error("archive does not hold the tar")
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("archive mode %v, want 0644", st.Mode().Perm())
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"seal", inPath}, 2, "seal: --fragment is required"},
		{[]string{"seal", "--fragment", filepath.Join(dir, "nope"), "-o", out, inPath}, 1, "seal: read the key fragment: open "},
		{[]string{"seal", "--fragment", fragPath, "-o", out, filepath.Join(dir, "missing.tar")}, 1, "seal: open "},
	} {
		code, stdout, stderr := sealRun(t, bin, nil, tc.args...)
		if code != tc.code || len(stdout) != 0 || !strings.Contains(string(stderr), tc.msg) {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q; want exit %d and %q", tc.args, code, len(stdout), stderr, tc.code, tc.msg)
		}
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, archive) {
		t.Error("a failed seal changed the archive")
	}
}

func testSealBinaryPipe(t *testing.T, bin string) {
	_, fragPath, _, fragment, plain := sealFiles(t)
	code, stdout, stderr := sealRun(t, bin, bytes.NewReader(plain), "seal", "--fragment", fragPath)
	if code != 0 || len(stderr) != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !bytes.Equal(openArchive(t, stdout, fragment), plain) {
		t.Error("archive on stdout does not hold the tar")
	}
}

// On a terminal, seal shows its progress on stderr, ending in a summary line.
func testSealBinaryTerminal(t *testing.T, bin string) {
	dir, fragPath, _, fragment, _ := sealFiles(t)
	plain := make([]byte, 3<<20)
	rand.Read(plain)
	in, out := filepath.Join(dir, "big.tar"), filepath.Join(dir, "big.enc")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	ptmx, pts := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "seal", "--fragment", fragPath, "-o", out, in)
	cmd.Stderr = pts
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once every slave end is closed
		read <- b
	}()
	err := cmd.Run()
	pts.Close()
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	var shown []byte
	select {
	case shown = <-read:
	case <-time.After(30 * time.Second):
		t.Fatal("the terminal did not close")
	}
	if want := regexp.MustCompile(`^\rseal: .*\rseal: 3\.0 MiB in [0-9]+\.[0-9]s, [0-9]+\.[0-9] MiB/s\x1b\[K\r\n$`); !want.Match(shown) {
		t.Errorf("terminal shows %q, want progress ending in a summary matching %s", shown, want)
	}
	archive, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(openArchive(t, archive, fragment), plain) {
		t.Error("archive does not hold the tar")
	}
}

// openPTY opens a pseudo-terminal pair, closed when t ends.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptmx, pts
}

// fakeDocker writes a docker CLI that records DOCKER_HOST and its
// arguments in its log and finds the images when loaded is true.
func fakeDocker(t *testing.T, dir string, loaded bool) (path, log string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path, log = filepath.Join(dir, "docker"), filepath.Join(dir, "docker.log")
	code := 1
	if loaded {
		code = 0
	}
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s|%%s\\n' \"$DOCKER_HOST\" \"$*\" >>%q\nexit %d\n", log, code)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

// serveUnlock runs serve with env (and the YAML config when not empty),
// sends one POST /unlock and returns its answer; serve is stopped again.
func serveUnlock(t *testing.T, bin, yaml string, env ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"serve"}
	if yaml != "" {
		cfg := filepath.Join(dir, "loader.yaml")
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", cfg)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"AZAION_API_URL=http://127.0.0.1:1", // never called: no login happens here
		"AZAION_RESOURCE_KEY=unused",
		"AZAION_CACHE_DIR=" + filepath.Join(dir, "cache"),
		"AZAION_LISTEN=" + addr,
	}, env...)
	var stderr sealOutput
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("serve did not stop in 30 s")
		}
	}()
	client := &http.Client{Timeout: 30 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := client.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer in 30 s:\n%s", stderr.String())
		}
	}
	resp, err := client.Post("http://"+addr+"/unlock", "application/json",
		strings.NewReader(`{"email": "op@azaion.example", "password": "unused-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func testServeUnlockSettings(t *testing.T, bin string) {
	dir := t.TempDir()
	envDocker, envLog := fakeDocker(t, filepath.Join(dir, "env"), false)
	yamlDocker, yamlLog := fakeDocker(t, filepath.Join(dir, "yaml"), false)
	readyDocker, readyLog := fakeDocker(t, filepath.Join(dir, "ready"), true)
	yaml := fmt.Sprintf("unlock:\n  images_path: %s\n  images: [azaion/yaml-a:1, azaion/yaml-b:1]\n  docker: %s\n",
		filepath.Join(dir, "yaml.enc"), yamlDocker)
	env := []string{
		"AZAION_IMAGES_PATH=" + filepath.Join(dir, "env.enc"),
		"AZAION_IMAGES=azaion/env-a:2, azaion/env-b:2,",
		"AZAION_DOCKER=" + envDocker,
		"DOCKER_HOST=unix:///run/azaion-test/docker.sock",
	}
	missing := `{"detail":"image archive missing and images not loaded: %s"}`
	inspect := "|image inspect --format {{.Id}} "

	// The YAML alone.
	code, body := serveUnlock(t, bin, yaml)
	if want := fmt.Sprintf(missing, filepath.Join(dir, "yaml.enc")); code != http.StatusNotFound || body != want {
		t.Errorf("YAML: POST /unlock = %d %s, want 404 %s", code, body, want)
	}
	if got, _ := os.ReadFile(yamlLog); !strings.HasPrefix(string(got), inspect+"azaion/yaml-a:1 azaion/yaml-b:1\n") {
		t.Errorf("YAML: the docker CLI ran as %q", got)
	}
	// The environment over the YAML, and DOCKER_HOST passed on.
	code, body = serveUnlock(t, bin, yaml, env...)
	if want := fmt.Sprintf(missing, filepath.Join(dir, "env.enc")); code != http.StatusNotFound || body != want {
		t.Errorf("environment: POST /unlock = %d %s, want 404 %s", code, body, want)
	}
	if got, _ := os.ReadFile(envLog); !strings.HasPrefix(string(got), "unix:///run/azaion-test/docker.sock"+inspect+"azaion/env-a:2 azaion/env-b:2\n") {
		t.Errorf("environment: the docker CLI ran as %q", got)
	}
	// Images found: ready at once, the archive never looked at.
	code, body = serveUnlock(t, bin, "", "AZAION_DOCKER="+readyDocker, "AZAION_IMAGES=azaion/c:3")
	if want := `{"state":"ready","error":null,"step":"","bytes_decrypted":0,"bytes_total":0}`; code != http.StatusOK || body != want {
		t.Errorf("loaded: POST /unlock = %d %s, want 200 %s", code, body, want)
	}
	if got, _ := os.ReadFile(readyLog); string(got) != inspect+"azaion/c:3\n" {
		t.Errorf("loaded: the docker CLI ran as %q", got)
	}
}

// sealOutput collects a process's output.
type sealOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *sealOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *sealOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
