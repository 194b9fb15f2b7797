package cache

import (
	"context"
	"io"
)

// ChunkSize is the unit of fetching and checking.
func (c *Cache) ChunkSize() int64 { return c.opt.ChunkSize }

// Has reports whether chunk i of folder/name is on disk, in the version
// the entry records, whatever it is: an open asks before fetching a chunk
// the cache would not need.
func (c *Cache) Has(folder, name string, i int64) bool {
	if checkNames(folder, name) != nil || c.checkFolder(folder, false) != nil {
		return false
	}
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur; e != nil && e.onDisk() {
		_, ok := e.present(i)
		return ok
	}
	sc, err := readSidecar(c.root, metaPath(folder, name))
	if err != nil {
		return false
	}
	_, ok := sc.Chunks[i]
	return ok
}

// SeedStream marks chunk i as being fetched by the caller rather than by
// the cache (the open's GET of the first chunk), and returns the function
// that ends that fetch with the body still arriving, from the Part's
// version: deliver(body) reads it in the
// background into a chunk buffer of the cache, and readers of a prefix
// of the chunk have their bytes as soon as they are in (see flight.wait),
// before the whole chunk is stored and recorded as a fetched chunk is.
// deliver closes body. A body that fails or ends early leaves the chunk
// to the cache, which fetches it from the origin; deliver(nil) does so at
// once.
func (p *Part) SeedStream(i int64) (deliver func(body io.ReadCloser)) {
	e := p.e
	f := p.seedFlight(i)
	if f == nil {
		return nil
	}
	return func(body io.ReadCloser) {
		if body == nil {
			e.c.end(e.key)
			go p.fetchRun(context.Background(), i, []*flight{f})
			return
		}
		go func() {
			defer body.Close()
			buf := e.c.chunkBuf(e.chunkLen(i))
			n, err := e.fill(f, body, buf)
			if err != nil {
				if e.endFill(f) { // a reader may still copy from buf: the GC's
					e.c.unstored.Add(-1)
				} else {
					e.c.putChunkBuf(buf)
				}
				e.c.log.Debug("cache: seeded chunk failed, fetching it", "folder", e.folder, "name", e.name, "chunk", i, "bytes", n, "err", err)
				e.c.end(e.key)
				p.fetchRun(context.Background(), i, []*flight{f})
				return
			}
			p.originBytes.Add(int64(n))
			e.c.originBytes.Add(int64(n))
			e.publish(f, buf)
			defer e.c.end(e.key)
			e.storePublished(i, f)
		}()
	}
}

// seedFlight is Seed's flight of chunk i, nil when the chunk is on disk,
// being fetched or past the end.
func (p *Part) seedFlight(i int64) *flight {
	e := p.e
	if i < 0 || i >= e.chunks {
		return nil
	}
	e.mu.Lock()
	if _, ok := e.tags[i]; (ok && e.disk) || e.flights[i] != nil {
		e.mu.Unlock()
		return nil
	}
	if e.flights == nil {
		e.flights = map[int64]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	e.flights[i] = f
	e.mu.Unlock()
	e.c.begin(e.key)
	return f
}
