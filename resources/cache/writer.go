package cache

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Writer puts a whole big part into the cache as it is uploaded: the bytes
// go to a temp file and Commit moves it into place with its sidecar.
//
// Write never fails, so a Writer can sit beside an upload (io.TeeReader,
// io.MultiWriter) without a full disk failing the upload: the first disk
// error is kept, writing stops, and Commit returns it.
type Writer struct {
	c            *Cache
	folder, name string
	f            *os.File
	n            int64
	crcs         map[int64]uint32
	crc          uint32 // of the current chunk so far
	err          error
	done         bool
}

// Writer starts an entry for folder/name.
func (c *Cache) Writer(folder, name string) (*Writer, error) {
	if err := checkNames(folder, name); err != nil {
		return nil, err
	}
	if !cacheable(name) {
		return nil, fmt.Errorf("cache: %s/%s: name too long for a cache file", folder, clip(name))
	}
	dir := filepath.Join(c.dir, folder)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Writer{c: c, folder: folder, name: name, f: f, crcs: map[int64]uint32{}}, nil
}

// Write appends p. It always reports len(p) written; see Writer.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("cache: write after commit or abort")
	}
	if w.err != nil {
		return len(p), nil
	}
	if _, err := w.f.Write(p); err != nil {
		w.err = err
		return len(p), nil
	}
	chunk := w.c.opt.ChunkSize
	for q := p; len(q) > 0; {
		k := min(int64(len(q)), chunk-w.n%chunk)
		w.crc = crc32.Update(w.crc, castagnoli, q[:k])
		w.n += k
		q = q[k:]
		if w.n%chunk == 0 {
			w.crcs[w.n/chunk-1] = w.crc
			w.crc = 0
		}
	}
	return len(p), nil
}

// Err is the first disk error, if any.
func (w *Writer) Err() error { return w.err }

// Commit binds what was written to v and small and moves it into place,
// replacing any entry of folder/name; Parts open on the old one go on from
// their origin. On any error the temp file is removed and no entry is left.
func (w *Writer) Commit(v Version, small []byte) error {
	if w.done {
		return errors.New("cache: commit after commit or abort")
	}
	err := w.commit(v, small)
	if err != nil {
		w.Abort()
		return fmt.Errorf("cache: commit %s/%s: %w", w.folder, w.name, err)
	}
	w.c.fit(w.folder + "/" + w.name) // once the slot's lock is released
	return nil
}

func (w *Writer) commit(v Version, small []byte) error {
	switch {
	case w.err != nil:
		return w.err
	case v.BigLen != w.n:
		return fmt.Errorf("version says %d bytes, %d written", v.BigLen, w.n)
	case HashSmall(small) != v.SmallHash:
		return errors.New("small part does not match the version's hash")
	case w.c.opt.MaxBytes > 0 && w.n > w.c.opt.MaxBytes:
		return fmt.Errorf("%d bytes do not fit in cache_max_bytes %d", w.n, w.c.opt.MaxBytes)
	}
	if w.n%w.c.opt.ChunkSize != 0 {
		w.crcs[w.n/w.c.opt.ChunkSize] = w.crc
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	c := w.c
	s := c.slot(w.folder, w.name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.detach()
		s.cur = nil
	}
	meta := c.metaPath(w.folder, w.name)
	// No sidecar while the data file changes under it.
	if err := os.Remove(meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	key := w.folder + "/" + w.name
	c.setBytes(key, 0)
	if err := os.Rename(w.f.Name(), c.dataPath(w.folder, w.name)); err != nil {
		return err
	}
	w.done = true
	sc := &sidecar{
		Format: formatVersion, Version: v, Small: append([]byte(nil), small...),
		ChunkSize: c.opt.ChunkSize, Chunks: w.crcs, LastUsed: time.Now().UTC(),
	}
	if err := writeSidecar(meta, sc); err != nil {
		os.Remove(c.dataPath(w.folder, w.name))
		return err
	}
	c.setBytes(key, w.n)
	return nil
}

// Abort drops what was written. It is a no-op after Commit.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}
