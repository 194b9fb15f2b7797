package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"sync"
	"time"
)

// entry is the shared state of one version of one big part in the cache:
// every Part of that version reads through it.
type entry struct {
	c            *Cache
	slot         *slot
	folder, name string
	key          string // folder/name
	gen          uint64 // of the files, for the size bound
	data, metaP  string
	v            Version
	mkey         Key // the version's chunk key; in memory only
	chunk        int64
	chunks       int64

	mu       sync.Mutex
	tags     map[int64]tag     // chunks on disk → their tags
	plain    int64             // the plaintext size, once known (SetPlainSize)
	flights  map[int64]*flight // chunks being fetched
	streams  []*stream         // streamed runs in flight (stream.go)
	unkept   bool              // the last streamed chunk was not stored: fetch no further ahead
	disk     bool              // the files are ours to read and write
	dirty    int               // chunks recorded since the last sidecar write
	timer    *time.Timer
	lastUsed time.Time
	warned   bool // a disk error was logged already
}

// load binds folder/name to v: it keeps the entry on disk when its sidecar
// records v under key's binding, and starts an empty sparse one otherwise.
// A disk that fails, or a folder directory that checkFolder refuses, only
// makes the entry serve from the origin.
func (c *Cache) load(s *slot, folder, name string, v Version, key Key) *entry {
	e := &entry{
		c: c, slot: s, folder: folder, name: name, key: folder + "/" + name,
		data: dataPath(folder, name), metaP: metaPath(folder, name),
		v: v, mkey: key, chunk: c.opt.ChunkSize,
		tags: map[int64]tag{}, lastUsed: time.Now(),
	}
	e.chunks = chunkCount(v.BigLen, e.chunk)
	if !cacheable(name) || c.checkFolder(folder, true) != nil {
		return e
	}
	sc, err := readSidecar(c.root, e.metaP)
	if err == nil && sc.Version == v && sc.ChunkSize == e.chunk && sc.Binding == key.binding(v, e.chunk) {
		e.tags = sc.Chunks
		e.plain = sc.PlainSize
		e.disk = true
		e.gen = c.setBytes(e.key, sc.bytes())
		if err := e.writeSidecarLocked(); err != nil { // records the use
			e.diskError("write sidecar", err)
		}
		return e
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("cache: unreadable sidecar, starting the entry afresh", "folder", folder, "name", name, "err", err)
	} else if err == nil && sc.Version == v && sc.ChunkSize == e.chunk {
		c.log.Warn("cache: sidecar fails its binding, starting the entry afresh", "folder", folder, "name", name)
	}
	e.gen = c.setBytes(e.key, 0)
	if err := e.reset(); err != nil {
		e.diskError("start entry", err)
		return e
	}
	e.disk = true
	return e
}

// reset replaces whatever is on disk by an empty sparse data file of the
// version's length and a sidecar that records no chunk.
func (e *entry) reset() error {
	root := e.c.root
	if err := root.Remove(e.metaP); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := root.Remove(e.data); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := root.OpenFile(e.data, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(e.v.BigLen)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return e.writeSidecarLocked()
}

// writeSidecarLocked writes the sidecar from the entry's state; the caller
// holds the slot's lock.
func (e *entry) writeSidecarLocked() error {
	e.mu.Lock()
	sc := &sidecar{
		Format: formatVersion, Version: e.v, PlainSize: e.plain, ChunkSize: e.chunk,
		Binding: e.mkey.binding(e.v, e.chunk), Chunks: maps.Clone(e.tags), LastUsed: e.lastUsed.UTC(),
	}
	n := e.dirty
	e.dirty = 0
	e.mu.Unlock()
	if err := writeSidecar(e.c.root, e.metaP, sc); err != nil {
		e.mu.Lock()
		e.dirty += n
		e.mu.Unlock()
		return err
	}
	return nil
}

// flush writes the sidecar if chunks were recorded since the last write and
// the entry still owns its files.
func (e *entry) flush() error {
	e.slot.mu.Lock()
	defer e.slot.mu.Unlock()
	e.mu.Lock()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	skip := e.slot.cur != e || !e.disk || e.dirty == 0
	e.mu.Unlock()
	if skip {
		return nil
	}
	if err := e.writeSidecarLocked(); err != nil {
		e.diskError("write sidecar", err)
		return fmt.Errorf("cache: %s/%s: %w", e.folder, e.name, err)
	}
	return nil
}

// onDisk reports whether the entry owns its files.
func (e *entry) onDisk() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.disk
}

// detach gives up the files: another version, a commit or a removal takes
// them. Parts on this entry go on reading from their origin.
func (e *entry) detach() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.disk = false
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

func (e *entry) meta() Meta {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Meta{
		Version: e.v, PlainSize: e.plain, ChunkSize: e.chunk,
		Present: len(e.tags), Total: int(e.chunks), LastUsed: e.lastUsed,
	}
}

// present returns the recorded tag of chunk i, if it is on disk.
func (e *entry) present(i int64) (tag, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.disk {
		return tag{}, false
	}
	t, ok := e.tags[i]
	return t, ok
}

// forget drops chunk i's record if it is still t.
func (e *entry) forget(i int64, t tag) {
	e.mu.Lock()
	got, ok := e.tags[i]
	ok = ok && got == t
	if ok {
		delete(e.tags, i)
		e.dirty++
	}
	e.mu.Unlock()
	if ok {
		e.c.addBytes(e.key, e.gen, -e.chunkLen(i))
	}
}

// record notes chunk i as on disk with tag t, and writes the sidecar when
// enough chunks went unrecorded, or schedules it. It reports false when
// the entry gave up its files meanwhile.
func (e *entry) record(i int64, t tag) bool {
	e.mu.Lock()
	if !e.disk {
		e.mu.Unlock()
		return false
	}
	e.tags[i] = t
	e.dirty++
	e.scheduleLocked()
	return true
}

// setPlainSize records the plaintext size, for the next sidecar write.
func (e *entry) setPlainSize(n int64) {
	e.mu.Lock()
	if !e.disk || e.plain == n {
		e.mu.Unlock()
		return
	}
	e.plain = n
	e.dirty++
	e.scheduleLocked()
}

// scheduleLocked writes the sidecar when enough changes went unrecorded,
// or schedules the write; it is called with e.mu held and releases it.
func (e *entry) scheduleLocked() {
	now := e.dirty >= persistEvery
	if !now && e.timer == nil {
		e.timer = time.AfterFunc(persistDelay, func() { e.flush() })
	}
	e.mu.Unlock()
	if now {
		e.flush()
	}
}

// diskError logs a disk failure once per entry; reads go on from the origin.
func (e *entry) diskError(op string, err error) {
	e.mu.Lock()
	warned := e.warned
	e.warned = true
	e.mu.Unlock()
	if !warned {
		e.c.log.Warn("cache: disk error, serving from the network", "op", op, "folder", e.folder, "name", e.name, "err", err)
	}
}
