package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRandomCorruptions damages a full cache entry in 100 random ways —
// bit flips and truncation of the data file and of the sidecar, a sidecar
// or a data file of another version, garbage over a chunk — and reopens
// the cache each time: every damage is detected (the origin is asked
// again) and not one wrong byte is served.
func TestRandomCorruptions(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const chunks = 8
	r, other := newResource(chunks*cs-100), newResource(chunks*cs-100)
	dataName, metaName := filepath.Join("models", "yolo.onnx.big"), filepath.Join("models", "yolo.onnx.big.meta")

	// fill caches r (or other) whole in dir and closes the cache.
	fill := func(dir string, res resource) {
		c, err := Open(dir, Options{ChunkSize: cs})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, part(t, c, res, &memOrigin{data: res.big}), res.big)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	otherDir := t.TempDir()
	fill(otherDir, other)

	flip := func(path string, off int64) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[off] ^= 1 << rng.IntN(8)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(dst, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// sidecarSpan is a byte range of a field's value in the sidecar's JSON
	// that binds the entry: the binding, the ETag, the chunk map.
	sidecarSpan := func(meta []byte, field string) (int, int) {
		i := bytes.Index(meta, []byte(`"`+field+`":`))
		if i < 0 {
			t.Fatalf("sidecar has no %s: %s", field, meta)
		}
		i += len(field) + 3
		end := i + 1
		for end < len(meta) && meta[end] != ',' && meta[end] != '}' || field == "chunks" && meta[end] != '}' {
			end++
		}
		return i, end
	}
	kinds := []struct {
		name string
		do   func(dir string)
	}{
		{"data bit flip", func(dir string) {
			flip(filepath.Join(dir, dataName), rng.Int64N(r.v.BigLen))
		}},
		{"data truncated", func(dir string) {
			if err := os.Truncate(filepath.Join(dir, dataName), rng.Int64N(r.v.BigLen)); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage over a chunk", func(dir string) {
			f, err := os.OpenFile(filepath.Join(dir, dataName), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt(random(cs), rng.Int64N(chunks-1)*cs)
			f.Close()
		}},
		{"data of another version", func(dir string) {
			copyFile(filepath.Join(dir, dataName), filepath.Join(otherDir, dataName))
		}},
		{"sidecar of another version", func(dir string) {
			copyFile(filepath.Join(dir, metaName), filepath.Join(otherDir, metaName))
		}},
		{"sidecar bit flip", func(dir string) {
			meta, err := os.ReadFile(filepath.Join(dir, metaName))
			if err != nil {
				t.Fatal(err)
			}
			// A flip that decodes to the same sidecar is no corruption:
			// base64's last character has bits the decoder ignores, and
			// JSON keys match without regard to case.
			var orig sidecar
			if err := json.Unmarshal(meta, &orig); err != nil {
				t.Fatal(err)
			}
			for {
				field := []string{"binding", "etag", "small_hash", "big_len", "chunks", "chunk_size", "format"}[rng.IntN(7)]
				lo, hi := sidecarSpan(meta, field)
				b := bytes.Clone(meta)
				b[lo+rng.IntN(hi-lo)] ^= 1 << rng.IntN(8)
				var got sidecar
				if json.Unmarshal(b, &got) == nil && reflect.DeepEqual(got, orig) {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, metaName), b, 0o600); err != nil {
					t.Fatal(err)
				}
				break
			}
		}},
		{"sidecar truncated", func(dir string) {
			fi, err := os.Stat(filepath.Join(dir, metaName))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(filepath.Join(dir, metaName), rng.Int64N(fi.Size())); err != nil {
				t.Fatal(err)
			}
		}},
		{"chunk tag bit flip", func(dir string) {
			meta, err := os.ReadFile(filepath.Join(dir, metaName))
			if err != nil {
				t.Fatal(err)
			}
			var sc sidecar
			if err := json.Unmarshal(meta, &sc); err != nil {
				t.Fatal(err)
			}
			tg := sc.Chunks[rng.Int64N(chunks)]
			tg[4+rng.IntN(16)] ^= 1 << rng.IntN(8)
			sc.Chunks[rng.Int64N(chunks)] = tg
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			if err := writeSidecar(root, metaName, &sc); err != nil {
				t.Fatal(err)
			}
		}},
	}

	detected, wrong := 0, 0
	counts := map[string]int{}
	for i := range 100 {
		dir := t.TempDir()
		fill(dir, r)
		k := kinds[rng.IntN(len(kinds))]
		counts[k.name]++
		k.do(dir)
		c, err := Open(dir, Options{ChunkSize: cs})
		if err != nil {
			t.Fatal(err)
		}
		o := &memOrigin{data: r.big}
		p, err := c.Part("models", "yolo.onnx", r.v, r.key, o)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, r.v.BigLen)
		if n, err := p.ReadAt(context.Background(), got, 0); n != len(got) || err != nil {
			t.Fatalf("%d (%s): read %d, %v", i, k.name, n, err)
		}
		if !bytes.Equal(got, r.big) {
			wrong++
			t.Errorf("%d (%s): wrong bytes served", i, k.name)
		}
		if o.calls.Load() > 0 {
			detected++
		} else {
			t.Errorf("%d (%s): not detected", i, k.name)
		}
		// Repaired: a second read is served from disk, right.
		o.calls.Store(0)
		if n, err := p.ReadAt(context.Background(), got, 0); n != len(got) || err != nil || !bytes.Equal(got, r.big) {
			t.Fatalf("%d (%s): second read %d, %v", i, k.name, n, err)
		}
		if o.calls.Load() != 0 {
			t.Errorf("%d (%s): repaired entry fetched again", i, k.name)
		}
		c.Close()
	}
	var kindsSeen []string
	for k, n := range counts {
		kindsSeen = append(kindsSeen, fmt.Sprintf("%s: %d", k, n))
	}
	t.Logf("corruptions: %s", strings.Join(kindsSeen, ", "))
	if detected != 100 || wrong != 0 {
		t.Fatalf("%d of 100 corruptions detected, %d served wrong bytes", detected, wrong)
	}
}
