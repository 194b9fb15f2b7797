package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ChunkSize is the unit of fetching and checking.
func (c *Cache) ChunkSize() int64 { return c.opt.ChunkSize }

// Has reports whether chunk i of folder/name is on disk, in the version
// the entry records, whatever it is: an open asks before fetching a chunk
// the cache would not need.
func (c *Cache) Has(folder, name string, i int64) bool {
	if checkNames(folder, name) != nil {
		return false
	}
	s := c.slot(folder, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur; e != nil && e.onDisk() {
		_, ok := e.present(i)
		return ok
	}
	sc, err := readSidecar(c.metaPath(folder, name))
	if err != nil {
		return false
	}
	_, ok := sc.Chunks[i]
	return ok
}

// Seed marks chunk i as being fetched by the caller rather than by the
// cache, and returns the function that ends that fetch: deliver(b) with
// the chunk's bytes from the Part's version (b is then the cache's; it is
// stored and recorded as a fetched chunk is), or deliver(nil) when the
// caller got nothing usable, and the cache fetches the chunk from the
// origin itself. Readers of chunk i wait for it meanwhile, as for any
// fetch. The caller must call deliver once, soon: a reader waits for it up
// to its own deadline.
//
// Seed returns nil, and the caller drops its fetch, when chunk i is on
// disk, is being fetched already, or is past the end.
func (p *Part) Seed(ctx context.Context, i int64) (deliver func(b []byte)) {
	e := p.e
	if i < 0 || i >= e.chunks {
		return nil
	}
	e.mu.Lock()
	if _, ok := e.crcs[i]; (ok && e.disk) || e.flights[i] != nil {
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
	return func(b []byte) {
		defer e.c.end(e.key)
		if int64(len(b)) == e.chunkLen(i) {
			f.buf = b
			p.originBytes.Add(int64(len(b)))
			e.c.originBytes.Add(int64(len(b)))
		} else {
			f.buf, f.err = p.fetchOne(ctx, i)
		}
		if f.err == nil {
			e.store(i, f.buf)
		}
		e.mu.Lock()
		if e.flights[i] == f {
			delete(e.flights, i)
		}
		e.mu.Unlock()
		close(f.done)
	}
}

// fetchOne reads chunk i from the origin, on a context detached from ctx
// and bounded by FetchTimeout, as a fetch of the cache's own is.
func (p *Part) fetchOne(ctx context.Context, i int64) ([]byte, error) {
	e := p.e
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.c.opt.FetchTimeout)
	defer cancel()
	buf := make([]byte, e.chunkLen(i))
	n, err := p.origin.ReadAt(ctx, buf, i*e.chunk)
	if n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("origin ended %d bytes early: %w", len(buf)-n, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("cache: fetch %s/%s chunk %d: %w", e.folder, e.name, i, err)
	}
	p.originBytes.Add(int64(n))
	e.c.originBytes.Add(int64(n))
	return buf, nil
}
