package dockertest

import (
	"archive/tar"
	"bytes"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// BuildImage makes image tag in the engine with `docker import` of a tiny
// root file system whose files name the tag, and returns its ID. The same
// tag always gets the same files (docker import stamps the time, so not the
// same ID).
func (e *Engine) BuildImage(t testing.TB, tag string) (id string) {
	t.Helper()
	root := RootfsTar(map[string]string{
		"hello.txt":   "hello from " + tag + "\n",
		"etc/azaion":  "unlock test\n",
		"bin/nothing": strings.Repeat("x", 3000),
	})
	out, err := e.Docker(root, "import", "-", tag)
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// Save returns `docker save` of refs: a tar that `docker load` takes.
func (e *Engine) Save(t testing.TB, refs ...string) []byte {
	t.Helper()
	out, err := e.Docker(nil, append([]string{"save"}, refs...)...)
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	return out
}

// Load runs `docker load` of tar.
func (e *Engine) Load(t testing.TB, tar []byte) {
	t.Helper()
	if _, err := e.Docker(tar, "load"); err != nil {
		t.Fatalf("dockertest: %v", err)
	}
}

// Remove removes ref from the engine if it is there.
func (e *Engine) Remove(t testing.TB, ref string) {
	t.Helper()
	if _, ok := e.Inspect(ref); !ok {
		return
	}
	if _, err := e.Docker(nil, "rmi", "-f", ref); err != nil {
		t.Fatalf("dockertest: %v", err)
	}
}

// Inspect returns ref's image ID as `docker image inspect` reports it, and
// false when the engine does not have ref.
func (e *Engine) Inspect(ref string) (id string, ok bool) {
	out, err := e.Docker(nil, "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// RootfsTar is a tar of files (name → content), with their parent
// directories, in name order.
func RootfsTar(files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	dirs := map[string]bool{}
	for _, name := range names {
		if dir := filepath.Dir(name); dir != "." && !dirs[dir] {
			dirs[dir] = true
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755})
		}
		body := files[name]
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))})
		io.WriteString(tw, body)
	}
	tw.Close() // writes to a bytes.Buffer cannot fail
	return buf.Bytes()
}
