// Package cache owns the loader's local cache of big parts: ciphertext only,
// at <dir>/<folder>/<name>.big, filled lazily chunk by chunk and sparse until
// full, with a sidecar <name>.big.meta that binds the entry to one version,
// keeps the small part for offline opens and a CRC32C of every chunk on
// disk. A chunk is served from disk only when its CRC matches, so a crash in
// the middle of a fill, a bit flip or a truncated file never yields wrong
// bytes: the chunk is fetched again.
package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azaion/loader/resources/bufpool"
	"github.com/azaion/loader/resources/names"
)

// Options tune a Cache. Zero values take the defaults.
type Options struct {
	// ChunkSize is the unit of fetching and checking; default 1 MiB.
	ChunkSize int64
	// Logger receives bad chunks and disk errors; default discards.
	Logger *slog.Logger
	// FetchTimeout bounds one chunk's fetch from the origin; default 30s.
	FetchTimeout time.Duration
	// MaxBytes bounds the chunk bytes on disk; 0 is no bound. Least
	// recently used entries not in use are evicted to make room (evict.go).
	MaxBytes int64
	// Streams bounds the ranged GETs one sequential reader has in flight
	// at once (stream.go); default DefaultStreams.
	Streams int
	// MaxStreams bounds the ranged GETs in flight across every reader of
	// the cache, and with them the chunk buffers they fill; default twice
	// Streams.
	MaxStreams int
}

// Defaults and bounds.
const (
	DefaultChunkSize    = 1 << 20
	DefaultFetchTimeout = 30 * time.Second
	// DefaultStreams: through a proxy adding 40 ms of round trip and
	// capping each connection at 25 MB/s, 8 parallel ranged GETs carry
	// about 139 MB/s and 16 about 246 MB/s; 8 passes a link of a few
	// hundred Mbit/s while keeping a reader's buffers small.
	DefaultStreams = 8
	// persistEvery and persistDelay bound how many fetched chunks a crash
	// can forget: the sidecar is written after that many new chunks, or
	// that long after the first unrecorded one.
	persistEvery = 16
	persistDelay = time.Second
	// closeWait bounds how long Close waits for chunks on their way to
	// the disk.
	closeWait = 2 * time.Second
	// staleTemp is the age after which Open removes a temp file left behind.
	staleTemp = time.Hour
	// maxFileName is NAME_MAX; longer names are served but not cached.
	maxFileName = 255
	metaSuffix  = ".big.meta"
	dataSuffix  = ".big"
)

// ErrBadName: a folder or name that PROTOCOL §2 does not allow.
var ErrBadName = errors.New("cache: bad name")

// Cache is a directory of entries. It is safe for concurrent use.
type Cache struct {
	dir string
	opt Options
	log *slog.Logger

	mu    sync.Mutex
	slots map[string]*slot
	usage map[string]*usage // by folder/name
	total int64             // chunk bytes on disk
	grace time.Duration     // evictGrace; tests shorten it

	diskBytes, originBytes, evictions atomic.Int64

	bufs *bufpool.Pool // chunk buffers, for streams and for reads of part of a chunk

	// inFlight holds a token for each ranged GET in flight (MaxStreams).
	inFlight chan struct{}

	// unstored counts the chunks handed to readers and not yet stored;
	// Close waits for them.
	unstored atomic.Int64
}

// slot serializes what changes an entry's files as a whole (a new version,
// a commit, a removal, a sidecar write) and knows the entry in use.
type slot struct {
	mu  sync.Mutex
	cur *entry
}

// Open opens the cache at dir, creating it with mode 0700 or setting that
// mode on it, and removes temp files that crashed writers left behind.
func Open(dir string, opt Options) (*Cache, error) {
	if opt.ChunkSize <= 0 {
		opt.ChunkSize = DefaultChunkSize
	}
	if opt.FetchTimeout <= 0 {
		opt.FetchTimeout = DefaultFetchTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Streams <= 0 {
		opt.Streams = DefaultStreams
	}
	if opt.MaxStreams <= 0 {
		opt.MaxStreams = 2 * opt.Streams
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{dir: dir, opt: opt, log: opt.Logger, slots: map[string]*slot{}, usage: map[string]*usage{}, grace: evictGrace,
		bufs: bufpool.New(int(opt.ChunkSize), keptBufs), inFlight: make(chan struct{}, opt.MaxStreams)}
	c.removeStaleTemps()
	c.scanUsage()
	return c, nil
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Stats counts chunk bytes read from disk and fetched from origins.
type Stats struct {
	DiskBytes, OriginBytes int64
	// Evictions counts entries removed to keep within MaxBytes (Cache.Stats
	// only).
	Evictions int64
}

// Stats is the total over every Part of the cache.
func (c *Cache) Stats() Stats {
	return Stats{DiskBytes: c.diskBytes.Load(), OriginBytes: c.originBytes.Load(), Evictions: c.evictions.Load()}
}

func (c *Cache) slot(folder, name string) *slot {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := folder + "/" + name
	s := c.slots[k]
	if s == nil {
		s = &slot{}
		c.slots[k] = s
	}
	return s
}

func (c *Cache) dataPath(folder, name string) string {
	return filepath.Join(c.dir, folder, name+dataSuffix)
}

func (c *Cache) metaPath(folder, name string) string {
	return filepath.Join(c.dir, folder, name+metaSuffix)
}

// cacheable reports whether name's files fit in a file name.
func cacheable(name string) bool { return len(name)+len(metaSuffix) <= maxFileName }

// Lookup returns what the sidecar of folder/name records, for an open while
// the Resource API is out of reach.
func (c *Cache) Lookup(folder, name string) (Meta, bool) {
	if checkNames(folder, name) != nil {
		return Meta{}, false
	}
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur; e != nil && e.onDisk() {
		return e.meta(), true
	}
	sc, err := readSidecar(c.metaPath(folder, name))
	if err != nil {
		return Meta{}, false
	}
	return sc.meta(), true
}

// Remove deletes the entry of folder/name. Parts open on it go on reading
// from their origin.
func (c *Cache) Remove(folder, name string) error {
	if err := checkNames(folder, name); err != nil {
		return err
	}
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.detach()
		s.cur = nil
	}
	var errs []error
	for _, p := range []string{c.metaPath(folder, name), c.dataPath(folder, name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	c.setBytes(folder+"/"+name, 0)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cache: remove %s/%s: %w", folder, name, err)
	}
	return nil
}

// List returns, for each folder, the sorted names that have an entry.
func (c *Cache) List() (map[string][]string, error) {
	dirs, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("cache: list: %w", err)
	}
	out := map[string][]string{}
	for _, d := range dirs {
		if !d.IsDir() || !validName(d.Name()) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(c.dir, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("cache: list %s: %w", d.Name(), err)
		}
		var names []string
		for _, f := range files {
			if name, ok := strings.CutSuffix(f.Name(), metaSuffix); ok && f.Type().IsRegular() && validName(name) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			slices.Sort(names)
			out[d.Name()] = names
		}
	}
	return out, nil
}

// Close waits (up to closeWait) for the chunks that readers have been
// handed to reach the disk, and writes the sidecars that have chunks not
// yet recorded. The cache stays usable.
func (c *Cache) Close() error {
	// A chunk that readers have is on its way to the disk: wait for it
	// (a little), so that a restart finds it.
	for deadline := time.Now().Add(closeWait); c.unstored.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	slots := make([]*slot, 0, len(c.slots))
	for _, s := range c.slots {
		slots = append(slots, s)
	}
	c.mu.Unlock()
	var errs []error
	for _, s := range slots {
		s.mu.Lock()
		e := s.cur
		s.mu.Unlock()
		if e != nil {
			errs = append(errs, e.flush())
		}
	}
	return errors.Join(errs...)
}

// removeStaleTemps deletes old temp files (names starting with '.') in the
// folder directories.
func (c *Cache) removeStaleTemps() {
	c.eachFile(func(folder string, f fs.DirEntry) {
		if !strings.HasPrefix(f.Name(), ".") || !f.Type().IsRegular() {
			return
		}
		if info, err := f.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			p := filepath.Join(c.dir, folder, f.Name())
			if os.Remove(p) == nil {
				c.log.Info("cache: removed a stale temp file", "path", p)
			}
		}
	})
}

// eachFile calls fn for every file of every folder directory of the cache.
func (c *Cache) eachFile(fn func(folder string, f fs.DirEntry)) {
	dirs, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, d := range dirs {
		if !d.IsDir() || !validName(d.Name()) {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(c.dir, d.Name()))
		for _, f := range files {
			fn(d.Name(), f)
		}
	}
}

// The Store checks names first (1..200 bytes); the cache checks again,
// with the same characters, because these names become paths. It takes
// names up to NAME_MAX, as it did before PROTOCOL §2 limited them to 200
// bytes: one whose sidecar name would be too long is served, not cached.
var validName = names.File

func checkNames(folder, name string) error {
	if !validName(folder) || !validName(name) {
		return fmt.Errorf("%w: %q/%q", ErrBadName, clip(folder), clip(name))
	}
	return nil
}

var clip = names.Clip
