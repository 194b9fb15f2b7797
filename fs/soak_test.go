package fs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/loader/resources/testbed"
)

// soakTime is how long TestSoak runs: AZAION_SOAK (e.g. 60s), else 10 s so
// that make test stays short.
func soakTime(t *testing.T) time.Duration {
	if v := os.Getenv("AZAION_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("AZAION_SOAK=%q: %v", v, err)
		}
		return d
	}
	return 10 * time.Second
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// TestSoak runs 16 readers at random offsets and lengths through the mount
// of a loader whose cache starts cold, for AZAION_SOAK: no read may return
// a wrong byte or an error, and afterwards open file descriptors and
// goroutines are back to what they were after a short warm-up.
func TestSoak(t *testing.T) {
	d := soakTime(t)
	s := newStack(t, testbed.Options{})
	const size = 24<<20 + 4097
	p := newPattern(16, size)
	s.upload(t, nil, "soak.bin", p)
	_, dir := s.fresh(t, Options{})
	path := filepath.Join(dir, "soak.bin")

	var reads, mismatches, errs atomic.Int64
	run := func(d time.Duration, readers int) {
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for i := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := os.Open(path)
				if err != nil {
					errs.Add(1)
					t.Errorf("reader %d: open: %v", i, err)
					return
				}
				defer f.Close()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
				got, want := make([]byte, 256<<10), make([]byte, 256<<10)
				for time.Now().Before(stop) {
					n := 1 + rng.IntN(len(got))
					off := rng.Int64N(size)
					k, err := f.ReadAt(got[:n], off)
					w, _ := p.ReadAt(want[:n], off)
					reads.Add(1)
					if k != w || (err != nil && k == n) {
						errs.Add(1)
						t.Errorf("reader %d: read %d at %d: %d, %v; want %d", i, n, off, k, err, w)
						return
					}
					if !bytes.Equal(got[:k], want[:k]) {
						mismatches.Add(1)
						t.Errorf("reader %d: read %d at %d: wrong bytes", i, n, off)
						return
					}
				}
			}()
		}
		wg.Wait()
	}

	// Warm up briefly so that the baseline includes the pooled CDN
	// connections the readers need; most of the file is still cold.
	run(500*time.Millisecond, 16)
	time.Sleep(200 * time.Millisecond)
	fds, gs := openFDs(), runtime.NumGoroutine()
	warm := reads.Load()

	run(d, 16)
	t.Logf("%d reads in %v (%d in warm-up), %d mismatches, %d errors", reads.Load()-warm, d, warm, mismatches.Load(), errs.Load())
	if mismatches.Load() != 0 || errs.Load() != 0 {
		t.Fatalf("%d mismatches, %d errors", mismatches.Load(), errs.Load())
	}
	if reads.Load()-warm < 100 {
		t.Fatalf("only %d reads in %v", reads.Load()-warm, d)
	}
	// Back to baseline, within a bounded wait: a few of either may come
	// and go with pooled connections, but nothing grows with the reads.
	const slack = 8
	deadline := time.Now().Add(15 * time.Second)
	for {
		f, g := openFDs(), runtime.NumGoroutine()
		if f <= fds+slack && g <= gs+slack {
			t.Logf("fds %d (baseline %d), goroutines %d (baseline %d)", f, fds, g, gs)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("fds %d (baseline %d), goroutines %d (baseline %d) after the soak:\n%s", f, fds, g, gs, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
