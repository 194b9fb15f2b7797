// Package bufpool keeps byte buffers of about one size for reuse, up to a
// bound. It replaces sync.Pool for the loader's megabyte buffers: what a
// sync.Pool holds is gone after two GCs, which under the loader's soft
// memory limit run often, and the runtime hands the freed pages back to
// the OS. The
// next buffer is then fresh memory, a page fault per 4 KiB page on its first
// fill, and on the VMs the loader was measured on that cost more than the
// disk or network read that fills it (a warm sequential read of a page-
// cached file: 11.8 GB/s into one reused buffer, 1.4–2.7 GB/s into a fresh
// one per MiB). Buffers kept here stay live, so the runtime never frees
// them; the bound is what they cost.
package bufpool

// Pool is a bounded free list of buffers of capacity Size or a little more.
type Pool struct {
	size int
	free chan *[]byte
}

// New returns a Pool of buffers of size bytes that keeps at most keep.
func New(size, keep int) *Pool {
	return &Pool{size: size, free: make(chan *[]byte, keep)}
}

// Size is the capacity of the buffers the pool makes and keeps.
func (p *Pool) Size() int { return p.size }

// Get returns a buffer of length n: a kept one when there is one large
// enough, else a new one of capacity max(n, size).
func (p *Pool) Get(n int) *[]byte {
	select {
	case bp := <-p.free:
		if cap(*bp) >= n {
			*bp = (*bp)[:n]
			return bp
		}
	default:
	}
	b := make([]byte, n, max(n, p.size))
	return &b
}

// Put gives a buffer back. Beyond the bound, or at least twice the size,
// it is left to the GC. bp must not be used after.
func (p *Pool) Put(bp *[]byte) {
	if bp == nil || cap(*bp) < p.size || cap(*bp) >= 2*p.size {
		return
	}
	select {
	case p.free <- bp:
	default:
	}
}

// pageSize is the page the kernel faults in at a time; touching one byte
// per page makes the whole buffer resident.
const pageSize = 4096

// Prefill puts up to n new buffers of Size bytes in the free list, with
// every page already faulted in: the first reads after a start then cost
// what later ones do (a fresh MiB took 3.5–7 ms of page faults on the VMs
// the loader was measured on, more than the GET of a small read).
func (p *Pool) Prefill(n int) {
	for range n {
		b := make([]byte, p.size)
		for i := 0; i < len(b); i += pageSize {
			b[i] = 0
		}
		select {
		case p.free <- &b:
		default:
			return
		}
	}
}
