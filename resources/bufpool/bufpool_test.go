package bufpool

import (
	"runtime"
	"testing"
)

func TestReuseAndBounds(t *testing.T) {
	p := New(1<<20, 2)
	a := p.Get(100)
	if len(*a) != 100 || cap(*a) != 1<<20 {
		t.Fatalf("Get(100): len %d cap %d, want 100 and 1 MiB", len(*a), cap(*a))
	}
	(*a)[0] = 7
	p.Put(a)
	runtime.GC() // a sync.Pool would lose it here
	b := p.Get(1 << 20)
	if b != a || len(*b) != 1<<20 {
		t.Fatalf("the kept buffer was not reused after a GC")
	}
	// A request larger than the buffers gets a new one, kept when not too big.
	big := p.Get(1<<20 + 32)
	if len(*big) != 1<<20+32 {
		t.Fatalf("Get(1 MiB + 32): len %d", len(*big))
	}
	p.Put(b)
	p.Put(big)
	extra := make([]byte, 1<<20)
	p.Put(&extra) // a third: the free list holds two at most
	if n := len(p.free); n != 2 {
		t.Fatalf("free list holds %d, want 2", n)
	}
	huge := make([]byte, 2<<20)
	small := make([]byte, 10)
	q := New(1<<20, 4)
	q.Put(&huge)
	q.Put(&small)
	q.Put(nil)
	if n := len(q.free); n != 0 {
		t.Fatalf("kept %d buffers of the wrong size", n)
	}
}
