package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
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

// Meta is what a sidecar records about an entry.
type Meta struct {
	Version Version
	// Small is the small part's ciphertext, so that an open works offline.
	Small     []byte
	ChunkSize int64
	// Present is how many chunks are on disk, of Total.
	Present, Total int
	LastUsed       time.Time
	// PlainSize is the resource's plaintext size, once an open has found
	// it (0: not known): names and sizes are listed before a login.
	PlainSize int64
}

// formatVersion is the sidecar format; any other is treated as absent.
const formatVersion = 1

// sidecar is the file <name>.big.meta next to the data file.
type sidecar struct {
	Format    int     `json:"format"`
	Version   Version `json:"version"`
	Small     []byte  `json:"small"`
	ChunkSize int64   `json:"chunk_size"`
	// Chunks maps the index of each chunk present to its CRC32C.
	Chunks map[int64]uint32 `json:"chunks"`
	// LastUsed is for eviction by size, when it comes.
	LastUsed time.Time `json:"last_used"`
	// PlainSize is the plaintext size of the version, 0 while unknown.
	PlainSize int64 `json:"plain_size,omitempty"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func chunkCount(bigLen, chunk int64) int64 { return (bigLen + chunk - 1) / chunk }

// readSidecar reads and checks a sidecar. A sidecar that does not parse or
// does not hold together is an error, and the entry counts as absent.
func readSidecar(path string) (*sidecar, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("sidecar %s: %w", filepath.Base(path), err)
	}
	switch {
	case sc.Format != formatVersion:
		return nil, fmt.Errorf("sidecar %s: format %d", filepath.Base(path), sc.Format)
	case sc.ChunkSize <= 0 || sc.Version.BigLen < 0:
		return nil, fmt.Errorf("sidecar %s: chunk size %d, length %d", filepath.Base(path), sc.ChunkSize, sc.Version.BigLen)
	case HashSmall(sc.Small) != sc.Version.SmallHash:
		return nil, fmt.Errorf("sidecar %s: small part does not match its hash", filepath.Base(path))
	}
	n := chunkCount(sc.Version.BigLen, sc.ChunkSize)
	for i := range sc.Chunks {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("sidecar %s: chunk %d of %d", filepath.Base(path), i, n)
		}
	}
	if sc.Chunks == nil {
		sc.Chunks = map[int64]uint32{}
	}
	return &sc, nil
}

// writeSidecar replaces path atomically: a temp file (named with a leading
// '.', which no resource name has), fsync, rename, fsync of the directory.
// A sidecar that records no chunk is written without the fsyncs: losing it
// in a crash loses nothing (the entry starts afresh), and a new entry is on
// the path of a cold open's first byte.
func writeSidecar(path string, sc *sidecar) error {
	durable := len(sc.Chunks) > 0
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".meta-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
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
		Version: sc.Version, Small: append([]byte(nil), sc.Small...), ChunkSize: sc.ChunkSize,
		Present: len(sc.Chunks), Total: int(chunkCount(sc.Version.BigLen, sc.ChunkSize)), LastUsed: sc.LastUsed,
		PlainSize: sc.PlainSize,
	}
}
