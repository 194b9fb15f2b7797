package resources

import (
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/azaion/loader/resources/cache"
)

// maxHeld bounds the small parts a Store holds: 256 slots of MaxSmallLen
// bytes, 768 KiB locked in memory.
const maxHeld = 256

// heldSmalls keeps the small parts of the versions opened in this process,
// in memory only (PROTOCOL §2), so that a known version opens again while
// the Resource API is out of reach. Each is tied to the version of the big
// part it was checked against, and is used with no other. The slots are
// one anonymous mapping, locked (never swapped) and left out of core
// dumps; the least recently used entry gives way to a new one, and every
// slot is zeroed when it is given up and at logout.
type heldSmalls struct {
	log *slog.Logger

	mu     sync.Mutex
	arena  []byte // maxHeld slots of MaxSmallLen; nil until the first put
	byKey  map[string]*heldSmall
	free   []int
	tick   uint64
	warned bool // a failed mlock was logged
}

type heldSmall struct {
	slot, n int
	v       cache.Version
	used    uint64
}

func newHeldSmalls(log *slog.Logger) *heldSmalls {
	return &heldSmalls{log: log, byKey: map[string]*heldSmall{}}
}

// put holds small as folder/name's small part of version v.
func (h *heldSmalls) put(folder, name string, small []byte, v cache.Version) {
	if len(small) > MaxSmallLen {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.arena == nil && !h.mapLocked() {
		return
	}
	k := folder + "/" + name
	e := h.byKey[k]
	if e == nil {
		if len(h.free) == 0 {
			h.evictLocked()
		}
		e = &heldSmall{slot: h.free[len(h.free)-1]}
		h.free = h.free[:len(h.free)-1]
		h.byKey[k] = e
	}
	s := h.slotBytes(e.slot)
	clear(s)
	e.n = copy(s, small)
	e.v = v
	h.tick++
	e.used = h.tick
}

// version returns the version folder/name's small part is held for,
// without copying the small part out of the locked arena.
func (h *heldSmalls) version(folder, name string) (cache.Version, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.byKey[folder+"/"+name]; e != nil {
		return e.v, true
	}
	return cache.Version{}, false
}

// get returns a copy of folder/name's held small part and its version.
func (h *heldSmalls) get(folder, name string) ([]byte, cache.Version, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.byKey[folder+"/"+name]
	if e == nil {
		return nil, cache.Version{}, false
	}
	h.tick++
	e.used = h.tick
	return append([]byte(nil), h.slotBytes(e.slot)[:e.n]...), e.v, true
}

// drop gives up folder/name's small part.
func (h *heldSmalls) drop(folder, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := folder + "/" + name
	if e := h.byKey[k]; e != nil {
		h.releaseLocked(k, e)
	}
}

// clear gives up every small part.
func (h *heldSmalls) clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, e := range h.byKey {
		h.releaseLocked(k, e)
	}
}

func (h *heldSmalls) releaseLocked(k string, e *heldSmall) {
	clear(h.slotBytes(e.slot))
	delete(h.byKey, k)
	h.free = append(h.free, e.slot)
}

func (h *heldSmalls) evictLocked() {
	var oldest string
	for k, e := range h.byKey {
		if oldest == "" || e.used < h.byKey[oldest].used {
			oldest = k
		}
	}
	h.releaseLocked(oldest, h.byKey[oldest])
}

func (h *heldSmalls) slotBytes(i int) []byte {
	return h.arena[i*MaxSmallLen : (i+1)*MaxSmallLen]
}

// mapLocked maps and locks the arena. A mapping that fails holds nothing
// (opens then need the Resource API); a lock that fails is logged once
// and the arena is used anyway.
func (h *heldSmalls) mapLocked() bool {
	b, err := unix.Mmap(-1, 0, maxHeld*MaxSmallLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		h.log.Warn("small parts: cannot map memory to hold them; offline opens need the Resource API", "err", err)
		return false
	}
	unix.Madvise(b, unix.MADV_DONTDUMP)
	if err := unix.Mlock(b); err != nil && !h.warned {
		h.warned = true
		h.log.Warn("small parts: cannot lock their memory, it may be swapped out", "err", err)
	}
	h.arena = b
	h.free = make([]int, 0, maxHeld)
	for i := maxHeld - 1; i >= 0; i-- {
		h.free = append(h.free, i)
	}
	return true
}

// close zeroes and unmaps the arena.
func (h *heldSmalls) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.arena == nil {
		return
	}
	clear(h.arena)
	unix.Munlock(h.arena)
	unix.Munmap(h.arena)
	h.arena, h.free, h.byKey = nil, nil, map[string]*heldSmall{}
}
