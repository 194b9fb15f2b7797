package cache

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillDuringUploadChild is the child of TestTempsRemovedAtStart: it
// writes part of an upload into the cache, says so, and waits to be killed.
func TestKillDuringUploadChild(t *testing.T) {
	dir := os.Getenv("AZAION_UPLOAD_CACHE")
	if dir == "" {
		t.Skip("the child of TestTempsRemovedAtStart")
	}
	c, err := Open(dir, Options{ChunkSize: cs})
	if err != nil {
		t.Fatal(err)
	}
	r := newResource(8 * cs)
	w, err := c.Writer("models", "up.bin", r.key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(r.big[:5*cs])
	os.Stdout.WriteString("written\n")
	time.Sleep(time.Minute)
}

// TestTempsRemovedAtStart kills (SIGKILL) a process in the middle of an
// upload into the cache, plants more temp files of every kind the cache
// writes, and opens the cache: every temp file is gone, and every other
// file is where it was.
func TestTempsRemovedAtStart(t *testing.T) {
	if os.Getenv("AZAION_UPLOAD_CACHE") != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	c := open(t, dir)
	kept := newResource(3 * cs)
	readAll(t, part(t, c, kept, &memOrigin{data: kept.big}), kept.big)
	c.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringUploadChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "AZAION_UPLOAD_CACHE="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "written" {
	}
	deadline.Stop()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	models := filepath.Join(dir, "models")
	list := func() (temps, others []string) {
		files, err := os.ReadDir(models)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".upload-") || strings.HasPrefix(f.Name(), ".meta-") {
				temps = append(temps, f.Name())
			} else {
				others = append(others, f.Name())
			}
		}
		return temps, others
	}
	if temps, _ := list(); len(temps) != 1 {
		t.Fatalf("after the kill: temp files %v, want the upload's", temps)
	}
	for name, data := range map[string]string{".meta-0123abcd": "{}", ".upload-feed": "partial", "notes.txt": "mine", ".hidden": "mine"} {
		if err := os.WriteFile(filepath.Join(models, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, before := list()

	c = open(t, dir)
	temps, after := list()
	if len(temps) != 0 {
		t.Fatalf("temp files left after a start: %v", temps)
	}
	if !slices.Equal(after, before) {
		t.Fatalf("other files %v, want %v", after, before)
	}
	for _, name := range []string{"notes.txt", ".hidden"} {
		if b, err := os.ReadFile(filepath.Join(models, name)); err != nil || string(b) != "mine" {
			t.Fatalf("%s: %q, %v", name, b, err)
		}
	}
	o := &memOrigin{data: kept.big}
	readAll(t, part(t, c, kept, o), kept.big)
	if o.calls.Load() != 0 {
		t.Fatal("the entry beside the temp files was lost")
	}
}
