// Package cache owns the loader's local cache of big parts: ciphertext only,
// at <dir>/<folder>/<name>.big, filled lazily chunk by chunk and sparse until
// full, with a sidecar <name>.big.meta that binds the entry to one version
// and keeps a MAC of every chunk on disk, under a key derived from the
// resource key and the version's small part (mac.go), neither of which is
// ever on disk. A chunk is served from disk only when its tag checks, so a
// crash in the middle of a fill, a bit flip, a truncated file or a chunk
// forged by whoever can write the directory never yields wrong bytes: the
// chunk is fetched again. Every path is opened beneath the cache directory
// without leaving it (os.Root), and folder directories that are not the
// loader's own are refused (dir.go).
package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
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
	dir  string
	root *os.Root // dir: no path opened through it leaves it
	opt  Options
	log  *slog.Logger
	lock *os.File // dir/.lock, flock'ed while this Cache lives, if it could be

	refused map[string]string // folder → why it is refused, logged once; under mu

	mu    sync.Mutex
	slots map[string]*slot
	usage map[string]*usage // by folder/name
	total int64             // chunk bytes on disk
	grace time.Duration     // evictGrace; tests shorten it

	diskBytes, originBytes, evictions atomic.Int64

	bufs   *bufpool.Pool // chunk buffers, for streams and for reads of part of a chunk
	budget aheadBudget   // the read-ahead budget of the readers over its Parts

	// inFlight holds a token for each ranged GET in flight (MaxStreams).
	inFlight chan struct{}

	// unstored counts the chunks handed to readers and not yet stored;
	// Close waits for them.
	unstored atomic.Int64
	closed   atomic.Bool
}

// slot serializes what changes an entry's files as a whole (a new version,
// a commit, a removal, a sidecar write) and knows the entry in use.
type slot struct {
	mu  sync.Mutex
	cur *entry
}

// Open opens the cache at dir, creating it with mode 0700 or setting that
// mode on it. A dir that is a symbolic link is refused. When no other
// process has the cache open, it removes every temp file a killed writer
// left behind (else only old ones), and it scrubs the entries of an older
// format, which kept small parts on disk.
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
	root, err := openRoot(dir, opt.Logger)
	if err != nil {
		return nil, err
	}
	c := &Cache{dir: dir, root: root, opt: opt, log: opt.Logger, slots: map[string]*slot{}, usage: map[string]*usage{}, grace: evictGrace,
		refused: map[string]string{}, bufs: bufpool.New(int(opt.ChunkSize), keptBufs), inFlight: make(chan struct{}, opt.MaxStreams)}
	c.lock = c.tryLock()
	c.removeTemps(c.lock != nil)
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

// dataPath and metaPath are an entry's files, in the cache's root.
func dataPath(folder, name string) string { return folder + "/" + name + dataSuffix }

func metaPath(folder, name string) string { return folder + "/" + name + metaSuffix }

// cacheable reports whether name's files fit in a file name.
func cacheable(name string) bool { return len(name)+len(metaSuffix) <= maxFileName }

// Lookup returns what the sidecar of folder/name records, for an open while
// the Resource API is out of reach.
func (c *Cache) Lookup(folder, name string) (Meta, bool) {
	if checkNames(folder, name) != nil || c.checkFolder(folder, false) != nil {
		return Meta{}, false
	}
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur; e != nil && e.onDisk() {
		return e.meta(), true
	}
	sc, err := readSidecar(c.root, metaPath(folder, name))
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
	for _, p := range []string{metaPath(folder, name), dataPath(folder, name)} {
		if err := c.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
// Folders that checkFolder refuses are left out.
func (c *Cache) List() (map[string][]string, error) {
	folders, err := c.folders()
	if err != nil {
		return nil, fmt.Errorf("cache: list: %w", err)
	}
	out := map[string][]string{}
	for _, folder := range folders {
		files, err := c.readDir(folder)
		if err != nil {
			return nil, fmt.Errorf("cache: list %s: %w", folder, err)
		}
		var names []string
		for _, f := range files {
			if name, ok := strings.CutSuffix(f.Name(), metaSuffix); ok && f.Type().IsRegular() && validName(name) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			slices.Sort(names)
			out[folder] = names
		}
	}
	return out, nil
}

// Close waits (up to closeWait) for the chunks that readers have been
// handed to reach the disk, writes the sidecars that have chunks not yet
// recorded, and lets go of the directory (its handle and lock): Parts
// still read afterwards are served from their origin. A second Close
// does nothing.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
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
			e.detach()
		}
	}
	if c.lock != nil {
		c.lock.Close()
	}
	c.root.Close()
	return errors.Join(errs...)
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
