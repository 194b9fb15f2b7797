package dockertest

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// WriteImageTar writes to w, streaming, a tar that `docker load` takes as
// image tag: one layer holding the file big.bin of size bytes read from
// content (random bytes keep it from compressing), in the layout of
// `docker save` (manifest.json, the image config, <layer>/layer.tar). It
// needs no engine and holds no more than a buffer in memory, so it makes
// archives of any size for benchmarks. It returns the image ID docker will
// report, "sha256:" and the config's SHA-256.
func WriteImageTar(w io.Writer, tag string, size int64, content io.Reader) (id string, err error) {
	const layerDir = "layer0"
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := tar.NewWriter(w)

	// The layer tar: one header, the padded body, two zero blocks.
	layerLen := 512 + (size+511)/512*512 + 1024
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: layerDir + "/", Mode: 0o755, ModTime: created},
		{Typeflag: tar.TypeReg, Name: layerDir + "/layer.tar", Mode: 0o644, Size: layerLen, ModTime: created},
	} {
		if err := out.WriteHeader(h); err != nil {
			return "", err
		}
	}
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(out, sum)}
	layer := tar.NewWriter(cw)
	if err := layer.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big.bin", Mode: 0o644, Size: size, ModTime: created}); err != nil {
		return "", err
	}
	if _, err := io.CopyN(layer, content, size); err != nil {
		return "", fmt.Errorf("layer content: %w", err)
	}
	if err := layer.Close(); err != nil {
		return "", err
	}
	if cw.n != layerLen {
		return "", fmt.Errorf("layer tar is %d bytes, not the %d announced", cw.n, layerLen)
	}

	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      created,
		"config":       map[string]any{"Cmd": []string{"/big.bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(sum.Sum(nil))}},
		"history":      []map[string]any{{"created": created, "created_by": "dockertest.WriteImageTar"}},
	})
	if err != nil {
		return "", err
	}
	cs := sha256.Sum256(config)
	configName := hex.EncodeToString(cs[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{tag},
		"Layers":   []string{layerDir + "/layer.tar"},
	}})
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		name string
		body []byte
	}{{configName, config}, {"manifest.json", manifest}} {
		if err := out.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: created}); err != nil {
			return "", err
		}
		if _, err := out.Write(f.body); err != nil {
			return "", err
		}
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(cs[:]), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
