package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	key          Key
	f            *os.File
	tmp          string // f's name in the cache's root
	n            int64
	tags         map[int64]tag
	buf          []byte // the current chunk so far: GMAC wants it whole
	err          error
	done         bool
}

// Writer starts an entry for folder/name, of the version whose chunk key
// is key.
func (c *Cache) Writer(folder, name string, key Key) (*Writer, error) {
	if err := checkNames(folder, name); err != nil {
		return nil, err
	}
	if !cacheable(name) {
		return nil, fmt.Errorf("cache: %s/%s: name too long for a cache file", folder, clip(name))
	}
	if !key.valid() {
		return nil, fmt.Errorf("cache: %s/%s: no chunk key", folder, name)
	}
	if err := c.checkFolder(folder, true); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	f, tmp, err := createTemp(c.root, folder, ".upload-")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Writer{c: c, folder: folder, name: name, key: key, f: f, tmp: tmp, tags: map[int64]tag{},
		buf: c.chunkBuf(c.opt.ChunkSize)[:0]}, nil
}

// Write appends p. It always reports len(p) written; see Writer.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("cache: write after commit or abort")
	}
	if w.err != nil {
		return len(p), nil
	}
	chunk := int(w.c.opt.ChunkSize)
	for q := p; len(q) > 0; {
		k := min(len(q), chunk-len(w.buf))
		w.buf = append(w.buf, q[:k]...)
		q = q[k:]
		if len(w.buf) == chunk {
			if w.flushChunk(); w.err != nil {
				return len(p), nil
			}
		}
	}
	return len(p), nil
}

// flushChunk tags the chunk in buf and writes it out.
func (w *Writer) flushChunk() {
	if len(w.buf) == 0 {
		return
	}
	i := w.n / w.c.opt.ChunkSize
	w.tags[i] = w.key.tag(i, w.buf)
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = err
	}
	w.n += int64(len(w.buf))
	w.buf = w.buf[:0]
}

// Err is the first disk error, if any.
func (w *Writer) Err() error { return w.err }

// Commit binds what was written to v and moves it into place, replacing
// any entry of folder/name; Parts open on the old one go on from their
// origin. On any error the temp file is removed and no entry is left.
func (w *Writer) Commit(v Version) error {
	if w.done {
		return errors.New("cache: commit after commit or abort")
	}
	if w.err == nil {
		w.flushChunk()
	}
	w.putBuf()
	err := w.commit(v)
	if err != nil {
		w.Abort()
		return fmt.Errorf("cache: commit %s/%s: %w", w.folder, w.name, err)
	}
	w.c.fit(w.folder + "/" + w.name) // once the slot's lock is released
	return nil
}

func (w *Writer) commit(v Version) error {
	switch {
	case w.err != nil:
		return w.err
	case v.BigLen != w.n:
		return fmt.Errorf("version says %d bytes, %d written", v.BigLen, w.n)
	case w.c.opt.MaxBytes > 0 && w.n > w.c.opt.MaxBytes:
		return fmt.Errorf("%d bytes do not fit in cache_max_bytes %d", w.n, w.c.opt.MaxBytes)
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
	meta := metaPath(w.folder, w.name)
	// No sidecar while the data file changes under it.
	if err := c.root.Remove(meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	key := w.folder + "/" + w.name
	c.setBytes(key, 0)
	if err := c.root.Rename(w.tmp, dataPath(w.folder, w.name)); err != nil {
		return err
	}
	w.done = true
	sc := &sidecar{
		Format: formatVersion, Version: v, ChunkSize: c.opt.ChunkSize,
		Binding: w.key.binding(v, c.opt.ChunkSize), Chunks: w.tags, LastUsed: time.Now().UTC(),
	}
	if err := writeSidecar(c.root, meta, sc); err != nil {
		c.root.Remove(dataPath(w.folder, w.name))
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
	w.putBuf()
	w.f.Close()
	w.c.root.Remove(w.tmp)
}

func (w *Writer) putBuf() {
	if w.buf != nil {
		w.c.putChunkBuf(w.buf[:cap(w.buf)])
		w.buf = nil
	}
}
