package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ttyOutput collects what a pseudo-terminal shows.
type ttyOutput struct {
	mu   sync.Mutex
	b    strings.Builder
	done chan struct{}
}

func watchTTY(ptmx *os.File) *ttyOutput {
	o := &ttyOutput{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf) // EIO once every slave end is closed
			o.mu.Lock()
			o.b.Write(buf[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return o
}

func (o *ttyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func (o *ttyOutput) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(o.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows %q", s, o.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// progressShown matches what a terminal shows of op's progress: lines
// rewritten in place, then the summary with the time taken and the rate.
func progressShown(op string) *regexp.Regexp {
	return regexp.MustCompile(`^\r` + op + `: .*\r` + op + `: 3\.0 MiB in [0-9]+\.[0-9]s, [0-9]+\.[0-9] MiB/s\x1b\[K\r\n$`)
}

// testClientsOnTerminal: on a terminal, load, upload and prefetch show progress on
// stderr, and login asks for the password without echoing it.
func testClientsOnTerminal(t *testing.T, bin string) {
	b := newOpsBed(t, 3<<20+1)
	startServe(t, bin, b, nil)
	env := append(b.env(), "AZAION_LISTEN="+b.listen)
	dir := t.TempDir()
	run := func(stdin bool, args ...string) (*ttyOutput, *os.File, *exec.Cmd, func() error) {
		ptmx, pts := openPTY(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		cmd.Stderr = pts
		if stdin {
			cmd.Stdin = pts
		}
		out := watchTTY(ptmx)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return out, ptmx, cmd, func() error {
			defer cancel()
			err := cmd.Wait()
			pts.Close()
			select {
			case <-out.done:
			case <-time.After(10 * time.Second):
				t.Fatal("the terminal did not close")
			}
			return err
		}
	}

	file := filepath.Join(dir, "model.onnx")
	out, _, _, wait := run(false, "load", b.folder+"/"+b.name, "-o", file)
	if err := wait(); err != nil {
		t.Fatalf("load: %v: %s", err, out.String())
	}
	if want := progressShown("load"); !want.MatchString(out.String()) {
		t.Errorf("load on a terminal shows %q, want progress matching %s", out.String(), want)
	}
	out, _, _, wait = run(false, "upload", file, "--folder", b.folder, "--name", "copy.onnx")
	if err := wait(); err != nil {
		t.Fatalf("upload: %v: %s", err, out.String())
	}
	if want := progressShown("upload"); !want.MatchString(out.String()) {
		t.Errorf("upload on a terminal shows %q, want progress matching %s", out.String(), want)
	}

	out, _, _, wait = run(false, "prefetch", b.folder+"/"+b.name)
	if err := wait(); err != nil {
		t.Fatalf("prefetch: %v: %s", err, out.String())
	}
	if want := progressShown("prefetch"); !want.MatchString(out.String()) {
		t.Errorf("prefetch on a terminal shows %q, want progress matching %s", out.String(), want)
	}

	out, ptmx, _, wait := run(true, "login", "--email", b.bed.Email)
	out.waitFor(t, "Password: ") // shown once echo is off
	ptmx.Write([]byte(b.bed.Password + "\n"))
	if err := wait(); err != nil {
		t.Fatalf("login with a typed password: %v: %q", err, out.String())
	}
	if strings.Contains(out.String(), b.bed.Password) {
		t.Errorf("the terminal echoed the password: %q", out.String())
	}
}
