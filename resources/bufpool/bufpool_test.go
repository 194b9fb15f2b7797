package bufpool

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"unsafe"
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

// resident counts b's pages that are in memory (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	// mincore wants a page-aligned address: widen b to whole pages.
	start := uintptr(unsafe.Pointer(&b[0])) &^ (pageSize - 1)
	end := uintptr(unsafe.Pointer(&b[len(b)-1])) + 1
	pages := (end - start + pageSize - 1) / pageSize
	vec := make([]byte, pages)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, start, pages*pageSize, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestPrefill: prefilled buffers are whole, resident, handed out by Get,
// and no more than the bound are kept. It runs in a child process of its
// own, whose heap has held no megabyte buffers: in this one, Prefill could
// get memory that earlier tests had faulted in already.
func TestPrefill(t *testing.T) {
	const size = 1 << 20
	if os.Getenv("BUFPOOL_PREFILL_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPrefill$", "-test.v")
		cmd.Env = append(os.Environ(), "BUFPOOL_PREFILL_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		t.Logf("child:\n%s", out)
		return
	}
	p := New(size, 2)
	p.Prefill(3)
	if n := len(p.free); n != 2 {
		t.Fatalf("free list holds %d after Prefill(3), want the bound, 2", n)
	}
	b := p.Get(size)
	if len(*b) != size {
		t.Fatalf("Get: len %d", len(*b))
	}
	if n, want := resident(t, *b), size/pageSize; n < want {
		t.Fatalf("a prefilled buffer has %d of %d pages resident", n, want)
	}
	// A buffer Prefill did not touch is not: the check can tell them apart.
	fresh := make([]byte, size)
	if n := resident(t, fresh); n > size/pageSize/2 {
		t.Skipf("a fresh buffer has %d pages resident already: nothing to tell apart", n)
	}
}
