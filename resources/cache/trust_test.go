package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn"
)

// rewriteSidecar edits the sidecar of models/yolo.onnx in dir as a writer
// of the directory can.
func rewriteSidecar(t *testing.T, dir string, edit func(sc *sidecar)) {
	t.Helper()
	path := filepath.Join(dir, "models", "yolo.onnx.big.meta")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	edit(&sc)
	if b, err = json.Marshal(&sc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestForgedChunkIsRefetched fills a cache from MinIO, then forges a
// chunk on disk (a bit flipped) with every tag a writer of the directory
// can make: one under a key derived without the small part, one under a
// key derived from a wrong small part, another chunk's tag, and the
// binding redone under a key without the small part. Each read returns the
// exact bytes, and the forged chunk is fetched from the CDN again.
func TestForgedChunkIsRefetched(t *testing.T) {
	r, _, proxy, cfg := putOverProxy(t, 4<<20+321)
	client, err := cdn.New(cfg, cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const forged = 2 // the chunk forged
	forgeries := []struct {
		name string
		edit func(sc *sidecar, chunk []byte)
	}{
		{"tag under a key without the small part", func(sc *sidecar, chunk []byte) {
			sc.Chunks[forged] = NewKey(testResourceKey, nil).tag(forged, chunk)
		}},
		{"tag under a key of another small part", func(sc *sidecar, chunk []byte) {
			sc.Chunks[forged] = NewKey(testResourceKey, random(3072)).tag(forged, chunk)
		}},
		{"another chunk's tag", func(sc *sidecar, chunk []byte) {
			sc.Chunks[forged] = sc.Chunks[forged+1]
		}},
		{"binding and tags redone without the small part", func(sc *sidecar, chunk []byte) {
			k := NewKey(testResourceKey, nil)
			sc.Binding = k.binding(sc.Version, sc.ChunkSize)
			sc.Chunks[forged] = k.tag(forged, chunk)
		}},
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Part("models", "yolo.onnx", r.v, r.key, client.Pin("models", "yolo.onnx", r.v.ETag))
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, p, r.big)
			// A chunk reaches its reader before it is on disk: wait,
			// bounded, for the last one to be stored.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				got, total := p.Present()
				if got == total {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d chunks cached", got, total)
				}
			}
			c.Close()

			data := filepath.Join(dir, "models", "yolo.onnx.big")
			b, err := os.ReadFile(data)
			if err != nil {
				t.Fatal(err)
			}
			b[forged<<20+12345] ^= 0x10
			if err := os.WriteFile(data, b, 0o600); err != nil {
				t.Fatal(err)
			}
			rewriteSidecar(t, dir, func(sc *sidecar) { f.edit(sc, b[forged<<20:(forged+1)<<20]) })

			c = open(t, dir)
			p, err = c.Part("models", "yolo.onnx", r.v, r.key, client.Pin("models", "yolo.onnx", r.v.ETag))
			if err != nil {
				t.Fatal(err)
			}
			before := proxy.BytesFromUpstream()
			got := make([]byte, len(r.big))
			if n, err := p.ReadAt(context.Background(), got, 0); n != len(got) || err != nil {
				t.Fatalf("read: %d, %v", n, err)
			}
			if sha256.Sum256(got) != sha256.Sum256(r.big) {
				t.Fatal("the forged chunk was served")
			}
			if fetched := proxy.BytesFromUpstream() - before; fetched < 1<<20 {
				t.Fatalf("%d bytes from the CDN: the forged chunk was not fetched again", fetched)
			}
		})
	}
}

// TestOldFormatScrubbed: a cache of the old format, whose sidecar and
// temp sidecar hold the small part, is opened: the entry is gone, and no
// file under the cache directory holds any 32 bytes of the small part.
func TestOldFormatScrubbed(t *testing.T) {
	dir := t.TempDir()
	r := newResource(3 * cs)
	models := filepath.Join(dir, "models")
	if err := os.MkdirAll(models, 0o700); err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(map[string]any{
		"format": 1, "version": r.v, "small": r.small, "chunk_size": cs,
		"chunks": map[string]uint32{"0": 1, "1": 2}, "last_used": time.Now(),
	})
	for path, b := range map[string][]byte{
		filepath.Join(models, "yolo.onnx.big.meta"): old,
		filepath.Join(models, ".meta-1234"):         old,
		filepath.Join(models, "yolo.onnx.big"):      r.big,
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := open(t, dir)
	if _, ok := c.Lookup("models", "yolo.onnx"); ok {
		t.Fatal("an entry of the old format is still listed")
	}
	files, _ := os.ReadDir(models)
	for _, f := range files {
		t.Errorf("left in the cache: %s", f.Name())
	}
	noSmallUnder(t, dir, r.small)
}

// noSmallUnder fails if any file under dir holds a 32-byte window of the
// small part (base64 too, as JSON writes bytes).
func noSmallUnder(t *testing.T, dir string, small []byte) {
	t.Helper()
	window := small[1000:1032]
	b64, _ := json.Marshal(small)
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil && (bytes.Contains(b, window) || bytes.Contains(b, b64[1000:1032])) {
			t.Errorf("small part at rest in %s", path)
		}
		return nil
	})
}

// TestSymlinkCacheDirRefused: a cache_dir that is a symbolic link is
// refused, and its target's mode is left as it was.
func TestSymlinkCacheDirRefused(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "cache")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	if _, err := Open(link, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); !errors.Is(err, ErrUnsafeDir) {
		t.Fatalf("open of a symlinked cache_dir: %v, want ErrUnsafeDir", err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("target's mode now %v (%v), want 0755", fi.Mode().Perm(), err)
	}
	if !strings.Contains(logs.String(), link) || !strings.Contains(logs.String(), "symbolic link") {
		t.Fatalf("no log line names the path and why: %q", logs.String())
	}
}

// TestUnsafeFolderRefused: a folder directory that is a symbolic link out
// of the cache, is writable by others, or is another user's is refused:
// reads are served right from the origin, an upload's Writer fails, and
// nothing is written into the link's target.
func TestUnsafeFolderRefused(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, dir string) (target string)
	}{
		{"symlink out of the cache", func(t *testing.T, dir string) string {
			target := t.TempDir()
			if err := os.Symlink(target, filepath.Join(dir, "models")); err != nil {
				t.Fatal(err)
			}
			return target
		}},
		{"symlink within the cache", func(t *testing.T, dir string) string {
			target := filepath.Join(dir, "other")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("other", filepath.Join(dir, "models")); err != nil {
				t.Fatal(err)
			}
			return target
		}},
		{"writable by others", func(t *testing.T, dir string) string {
			d := filepath.Join(dir, "models")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
			return d
		}},
		{"another user's", func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			d := filepath.Join(dir, "models")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs syncLog
			c, err := Open(dir, Options{ChunkSize: cs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			target := tc.make(t, dir)
			r := newResource(5 * cs)
			o := &memOrigin{data: r.big}
			readAll(t, part(t, c, r, o), r.big)
			readAll(t, part(t, c, r, o), r.big)
			if o.calls.Load() < 2 {
				t.Fatalf("%d fetches for two reads: the refused folder served from disk", o.calls.Load())
			}
			if _, err := c.Writer("models", "up.bin", r.key); !errors.Is(err, ErrUnsafeDir) {
				t.Fatalf("writer: %v, want ErrUnsafeDir", err)
			}
			if files, _ := os.ReadDir(target); len(files) != 0 {
				t.Fatalf("written into %s: %v", target, files)
			}
			if got, _ := c.List(); len(got) != 0 {
				t.Fatalf("listed: %v", got)
			}
			if n := strings.Count(logs.String(), "refusing folder directory"); n != 1 || !strings.Contains(logs.String(), filepath.Join(dir, "models")) {
				t.Fatalf("want one log line naming the folder, got %d: %q", n, logs.String())
			}
		})
	}
}

// syncLog is a log sink for a test.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
