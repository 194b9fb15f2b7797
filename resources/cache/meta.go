package cache

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"time"
)

// Version is what an entry is bound to. Every upload encrypts with a fresh
// IV, so a new version of a resource differs in all three.
type Version struct {
	// SmallHash is the hex SHA-256 of the small part (see HashSmall).
	SmallHash string `json:"small_hash"`
	// BigLen is the big part's length in bytes.
	BigLen int64 `json:"big_len"`
	// ETag is the CDN's ETag of the big part.
	ETag string `json:"etag"`
}

// HashSmall is Version.SmallHash for the small part small.
func HashSmall(small []byte) string {
	sum := sha256.Sum256(small)
	return hex.EncodeToString(sum[:])
}

// Meta is what a sidecar records about an entry. It never holds the small
// part (PROTOCOL §2).
type Meta struct {
	Version Version
	// PlainSize is the resource's plaintext size, once an open found it
	// (0 until then), so that a listing can show sizes without the small
	// part.
	PlainSize int64
	ChunkSize int64
	// Present is how many chunks are on disk, of Total.
	Present, Total int
	LastUsed       time.Time
}

// formatVersion is the sidecar format; any other is treated as absent.
// Format 1 kept the small part and CRC32Cs: Open scrubs such sidecars.
const formatVersion = 2

// sidecar is the file <name>.big.meta next to the data file.
type sidecar struct {
	Format    int     `json:"format"`
	Version   Version `json:"version"`
	PlainSize int64   `json:"plain_size,omitempty"`
	ChunkSize int64   `json:"chunk_size"`
	// Binding is the MAC of Version and ChunkSize under the version's key.
	Binding tag `json:"binding"`
	// Chunks maps the index of each chunk present to its tag.
	Chunks map[int64]tag `json:"chunks"`
	// LastUsed is for eviction by size.
	LastUsed time.Time `json:"last_used"`
}

func chunkCount(bigLen, chunk int64) int64 { return (bigLen + chunk - 1) / chunk }

// errOldFormat: a sidecar of another format.
var errOldFormat = errors.New("sidecar of another format")

// readSidecar reads and checks a sidecar, at rel in the cache's root. A
// sidecar that does not parse or does not hold together is an error, and
// the entry counts as absent.
func readSidecar(root *os.Root, rel string) (*sidecar, error) {
	b, err := root.ReadFile(rel)
	if err != nil {
		return nil, err
	}
	var head struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err == nil && head.Format != formatVersion {
		return nil, fmt.Errorf("sidecar %s: format %d: %w", path.Base(rel), head.Format, errOldFormat)
	}
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("sidecar %s: %w", path.Base(rel), err)
	}
	switch {
	case sc.ChunkSize <= 0 || sc.Version.BigLen < 0:
		return nil, fmt.Errorf("sidecar %s: chunk size %d, length %d", path.Base(rel), sc.ChunkSize, sc.Version.BigLen)
	}
	n := chunkCount(sc.Version.BigLen, sc.ChunkSize)
	for i := range sc.Chunks {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("sidecar %s: chunk %d of %d", path.Base(rel), i, n)
		}
	}
	if sc.Chunks == nil {
		sc.Chunks = map[int64]tag{}
	}
	return &sc, nil
}

// writeSidecar replaces rel atomically: a temp file (named with a leading
// '.', which no resource name has), fsync, rename, fsync of the directory.
// A sidecar that records no chunk is written without the fsyncs: losing it
// in a crash loses nothing (the entry starts afresh), and a new entry is on
// the path of a cold open's first byte.
func writeSidecar(root *os.Root, rel string, sc *sidecar) error {
	durable := len(sc.Chunks) > 0
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	dir := path.Dir(rel)
	f, tmp, err := createTemp(root, dir, ".meta-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, rel)
	}
	if err != nil {
		root.Remove(tmp)
		return err
	}
	if !durable {
		return nil
	}
	return syncDir(root, dir)
}

// createTemp creates a new file dir/<prefix><random> in root, as
// os.CreateTemp does, and returns it with its name in root.
func createTemp(root *os.Root, dir, prefix string) (*os.File, string, error) {
	for range 10 {
		var r [8]byte
		rand.Read(r[:])
		name := path.Join(dir, prefix+hex.EncodeToString(r[:]))
		f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", fmt.Errorf("create temp file in %s: %w", dir, os.ErrExist)
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

func (sc *sidecar) meta() Meta {
	return Meta{
		Version: sc.Version, PlainSize: sc.PlainSize, ChunkSize: sc.ChunkSize,
		Present: len(sc.Chunks), Total: int(chunkCount(sc.Version.BigLen, sc.ChunkSize)), LastUsed: sc.LastUsed,
	}
}
