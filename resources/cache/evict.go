package cache

import (
	"errors"
	"io/fs"
	"strings"
	"time"
)

// The size bound. Every chunk on disk is counted against Options.MaxBytes
// before it is written; when it would not fit, the least recently used
// entries are removed whole until it does. An entry that a read is using,
// or that was read within the grace period, is never removed, and a chunk
// that still does not fit is served without being kept: the bound holds at
// every moment, and no reader loses the range under it.

// evictGrace is how long after its last read an entry counts as in use.
const evictGrace = 5 * time.Second

// usage is the cache's record of one entry's files.
type usage struct {
	gen      uint64    // bumped whenever the files are replaced or removed
	bytes    int64     // chunk bytes on disk
	lastUsed time.Time // the last read, or the sidecar's last use
	active   int       // reads in progress
}

// use returns key's record; the caller holds c.mu.
func (c *Cache) use(key string) *usage {
	u := c.usage[key]
	if u == nil {
		u = &usage{}
		c.usage[key] = u
	}
	return u
}

// setBytes records that key's files were replaced by files holding n chunk
// bytes, and returns the generation of the new files.
func (c *Cache) setBytes(key string, n int64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.use(key)
	c.total += n - u.bytes
	u.bytes = n
	u.gen++
	u.lastUsed = time.Now()
	return u.gen
}

// addBytes adds n (which may be negative) to key's chunk bytes if its
// files are still of generation gen.
func (c *Cache) addBytes(key string, gen uint64, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u := c.use(key); u.gen == gen {
		u.bytes += n
		c.total += n
	}
}

// begin and end bracket a read of key: it is in use meanwhile, and its
// last use is when the read ended.
func (c *Cache) begin(key string) {
	c.mu.Lock()
	u := c.use(key)
	u.active++
	u.lastUsed = time.Now()
	c.mu.Unlock()
}

func (c *Cache) end(key string) {
	c.mu.Lock()
	u := c.use(key)
	u.active--
	u.lastUsed = time.Now()
	c.mu.Unlock()
}

// Size is the chunk bytes the cache holds on disk.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// reserve counts n more bytes for key's files of generation gen, first
// evicting other entries when the bound needs it. It reports false,
// counting nothing, when the bytes do not fit beside the entries in use or
// the files were replaced meanwhile.
func (c *Cache) reserve(key string, gen uint64, n int64) bool {
	if c.opt.MaxBytes > 0 && n > c.opt.MaxBytes {
		return false
	}
	tried := map[string]bool{key: true}
	for {
		c.mu.Lock()
		if c.use(key).gen != gen {
			c.mu.Unlock()
			return false
		}
		if c.opt.MaxBytes <= 0 || c.total+n <= c.opt.MaxBytes {
			c.use(key).bytes += n
			c.total += n
			c.mu.Unlock()
			return true
		}
		victim := c.lruLocked(tried)
		c.mu.Unlock()
		if victim == "" {
			return false
		}
		tried[victim] = true
		c.evict(victim)
	}
}

// lruLocked picks the least recently used entry with bytes on disk that is
// not in use and not in skip; "" when there is none.
func (c *Cache) lruLocked(skip map[string]bool) string {
	var best string
	var bestAt time.Time
	now := time.Now()
	for k, u := range c.usage {
		if skip[k] || u.bytes <= 0 || u.active > 0 || now.Sub(u.lastUsed) < c.grace {
			continue
		}
		if best == "" || u.lastUsed.Before(bestAt) {
			best, bestAt = k, u.lastUsed
		}
	}
	return best
}

// evict removes key's entry unless a read started on it meanwhile. Parts
// open on it go on reading from their origin.
func (c *Cache) evict(key string) {
	folder, name, _ := strings.Cut(key, "/")
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	c.mu.Lock()
	u := c.use(key)
	busy := u.active > 0 || time.Since(u.lastUsed) < c.grace
	held := u.bytes > 0
	c.mu.Unlock()
	if busy {
		return
	}
	if s.cur != nil {
		s.cur.detach()
		s.cur = nil
	}
	for _, p := range []string{metaPath(folder, name), dataPath(folder, name)} {
		if err := c.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cache: evict", "folder", folder, "name", name, "err", err)
		}
	}
	c.setBytes(key, 0)
	if held {
		c.evictions.Add(1)
	}
	c.log.Debug("cache: evicted", "folder", folder, "name", name)
}

// scanUsage counts the entries already on disk, from their sidecars, and
// removes data files that no sidecar accounts for. An entry of an older
// format (its sidecar kept the small part) is scrubbed and removed.
func (c *Cache) scanUsage() {
	old := 0
	c.eachFile(func(folder string, f fs.DirEntry) {
		if name, ok := strings.CutSuffix(f.Name(), dataSuffix); ok && validName(name) && f.Type().IsRegular() {
			if _, err := c.root.Lstat(metaPath(folder, name)); errors.Is(err, fs.ErrNotExist) {
				c.root.Remove(folder + "/" + f.Name())
			}
			return
		}
		name, ok := strings.CutSuffix(f.Name(), metaSuffix)
		if !ok || !validName(name) {
			return
		}
		sc, err := readSidecar(c.root, metaPath(folder, name))
		if errors.Is(err, errOldFormat) {
			c.scrub(metaPath(folder, name))
			c.root.Remove(metaPath(folder, name))
			old++
		}
		if err != nil {
			// load starts such an entry afresh; until then its data
			// file is of no use and counts nothing.
			c.root.Remove(dataPath(folder, name))
			return
		}
		c.mu.Lock()
		u := c.use(folder + "/" + name)
		u.bytes = sc.bytes()
		u.lastUsed = sc.LastUsed
		c.total += u.bytes
		c.mu.Unlock()
	})
	if old > 0 {
		c.log.Info("cache: removed entries of an older format, which kept small parts on disk; they are fetched again as read", "entries", old)
	}
}

// bytes is the chunk bytes a sidecar records.
func (sc *sidecar) bytes() int64 {
	var n int64
	for i := range sc.Chunks {
		n += min(sc.ChunkSize, sc.Version.BigLen-i*sc.ChunkSize)
	}
	return n
}

// fit evicts other entries until the bound holds again after key's files
// grew at once (a committed upload), and key's own entry when that is not
// enough.
func (c *Cache) fit(key string) {
	if c.opt.MaxBytes <= 0 {
		return
	}
	tried := map[string]bool{key: true}
	for {
		c.mu.Lock()
		over := c.total > c.opt.MaxBytes
		victim := ""
		if over {
			victim = c.lruLocked(tried)
		}
		c.mu.Unlock()
		if !over {
			return
		}
		if victim == "" {
			folder, name, _ := strings.Cut(key, "/")
			c.log.Warn("cache: entry does not fit in cache_max_bytes beside those in use, not kept", "folder", folder, "name", name)
			c.Remove(folder, name)
			return
		}
		tried[victim] = true
		c.evict(victim)
	}
}
