package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashResource is the same version in the parent and the child process.
func crashResource() resource {
	rng := rand.NewChaCha8([32]byte{'c', 'r', 'a', 's', 'h'})
	r := resource{small: make([]byte, 3072), big: make([]byte, 256*cs+99)}
	rng.Read(r.small)
	rng.Read(r.big)
	r.v = Version{SmallHash: HashSmall(r.small), BigLen: int64(len(r.big)), ETag: `"crash"`}
	r.key = NewKey(testResourceKey, r.small)
	return r
}

// slowOrigin serves data a little slowly, so that a kill lands mid-fill.
type slowOrigin struct{ memOrigin }

func (o *slowOrigin) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return o.memOrigin.ReadAt(ctx, p, off)
}

// TestKillDuringFillChild is the child of TestKillDuringFill: it fills the
// cache chunk by chunk, printing each, until it is killed.
func TestKillDuringFillChild(t *testing.T) {
	dir := os.Getenv("AZAION_CRASH_CACHE")
	if dir == "" {
		t.Skip("the child of TestKillDuringFill")
	}
	c, err := Open(dir, Options{ChunkSize: cs})
	if err != nil {
		t.Fatal(err)
	}
	r := crashResource()
	p, err := c.Part("models", "yolo.onnx", r.v, r.key, &slowOrigin{memOrigin{data: r.big}})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, cs)
	for i := int64(0); ; i = (i + 1) % 257 {
		p.ReadAt(context.Background(), buf, i*cs)
		fmt.Printf("chunk %d\n", i)
	}
}

// TestKillDuringFill kills (SIGKILL) a process in the middle of filling the
// cache, then opens the cache again: every byte served is right, and what
// the dead process recorded is kept.
func TestKillDuringFill(t *testing.T) {
	if os.Getenv("AZAION_CRASH_CACHE") != "" {
		t.Skip("in the child")
	}
	r := crashResource()
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringFillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "AZAION_CRASH_CACHE="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after 40..120 chunks: past a few sidecar writes, mid-fill.
		killAt := 40 + rand.IntN(80)
		seen := 0
		sc := bufio.NewScanner(out)
		deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "chunk ") {
				if seen++; seen == killAt {
					break
				}
			}
		}
		deadline.Stop()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if seen < killAt {
			t.Fatalf("round %d: the child filled %d chunks before it ended", round, seen)
		}

		c := open(t, dir)
		m, ok := c.Lookup("models", "yolo.onnx")
		if !ok || m.Present == 0 {
			t.Fatalf("round %d: after kill at chunk %d nothing recorded: %v %+v", round, killAt, ok, m)
		}
		o := &memOrigin{data: r.big}
		p, err := c.Part("models", "yolo.onnx", r.v, r.key, o)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(r.big))
		if n, err := p.ReadAt(context.Background(), got, 0); n != len(got) || err != nil || !bytes.Equal(got, r.big) {
			t.Fatalf("round %d: after kill at chunk %d: %d bytes, %v, right %v", round, killAt, n, err, bytes.Equal(got, r.big))
		}
		if fetched := o.calls.Load(); fetched >= 257 {
			t.Fatalf("round %d: all %d chunks fetched again: nothing kept", round, fetched)
		}
		t.Logf("round %d: killed at chunk %d; %d chunks kept, %d fetched again", round, killAt, m.Present, o.calls.Load())
	}
}

// TestDiskFull fills a cache on a 2 MiB tmpfs with an 8 MiB part: every
// read is served right from the origin once the disk is full, no temp file
// is left, an upload that does not fit leaves nothing, and a restart serves
// right bytes too.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	const chunk = 64 << 10
	c, err := Open(dir, Options{ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	r := newResource(8<<20 + 5)
	o := &memOrigin{data: r.big}
	p, err := c.Part("models", "yolo.onnx", r.v, r.key, o)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(r.big))
	for round := range 2 {
		if n, err := p.ReadAt(context.Background(), got, 0); n != len(got) || err != nil || !bytes.Equal(got, r.big) {
			t.Fatalf("read %d with the disk full: %d, %v, right %v", round, n, err, bytes.Equal(got, r.big))
		}
	}
	if chunks, total := p.Present(); chunks == 0 || chunks >= total {
		t.Fatalf("%d of %d chunks on a 2 MiB disk", chunks, total)
	}
	up := newResource(4 << 20)
	w, err := c.Writer("models", "upload.bin", up.key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(up.big)
	if err := w.Commit(up.v); err == nil {
		t.Fatal("commit of an upload larger than the disk succeeded")
	}
	c.Close()
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".") && fi.Name() != lockName && fi.Mode().IsRegular() {
			t.Errorf("temp file left: %s", path)
		}
		if err == nil && strings.HasPrefix(fi.Name(), "upload.bin") {
			t.Errorf("partial upload kept: %s", path)
		}
		return nil
	})
	c2, err := Open(dir, Options{ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	p2, err := c2.Part("models", "yolo.onnx", r.v, r.key, &memOrigin{data: r.big})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p2.ReadAt(context.Background(), got, 0); n != len(got) || (err != nil && !errors.Is(err, context.Canceled)) || !bytes.Equal(got, r.big) {
		t.Fatalf("after restart: %d, %v", n, err)
	}
}
