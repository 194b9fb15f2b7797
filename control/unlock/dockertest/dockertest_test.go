package dockertest

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestBuildSaveRemoveLoad(t *testing.T) {
	e := Shared(t)
	if got := os.Getenv("DOCKER_HOST"); got != e.Host {
		t.Errorf("DOCKER_HOST = %q, want the engine's %q", got, e.Host)
	}
	const tag = "dockertest/build:1"
	id := e.BuildImage(t, tag)
	t.Cleanup(func() { e.Remove(t, tag) })
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("BuildImage id %q", id)
	}
	if got, ok := e.Inspect(tag); !ok || got != id {
		t.Fatalf("Inspect = %q, %v; want %q", got, ok, id)
	}
	saved := e.Save(t, tag)
	e.Remove(t, tag)
	if got, ok := e.Inspect(tag); ok {
		t.Fatalf("after Remove, Inspect = %q", got)
	}
	e.Load(t, saved)
	if got, ok := e.Inspect(tag); !ok || got != id {
		t.Fatalf("after Load, Inspect = %q, %v; want %q", got, ok, id)
	}
}

// WriteImageTar's output loads as the image it names, with the ID it
// returned, and holds the layer's bytes.
func TestWriteImageTarLoads(t *testing.T) {
	e := Shared(t)
	const tag = "dockertest/big:1"
	t.Cleanup(func() { e.Remove(t, tag) })
	size := int64(3<<20 + 7)
	var buf bytes.Buffer
	id, err := WriteImageTar(&buf, tag, size, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() < int(size) {
		t.Fatalf("tar of %d bytes for a %d-byte layer", buf.Len(), size)
	}
	e.Load(t, buf.Bytes())
	if got, ok := e.Inspect(tag); !ok || got != id {
		t.Fatalf("Inspect = %q, %v; want %q", got, ok, id)
	}
	out, err := e.Docker(nil, "image", "inspect", "--format", "{{.Size}}", tag)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "3145735" {
		t.Errorf("image size %s, want %d", got, size)
	}
	if ents, _ := os.ReadDir(e.StagingDir()); len(ents) != 0 {
		t.Errorf("staging dir holds %d entries after a load", len(ents))
	}
}
