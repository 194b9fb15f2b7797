package control

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
)

// gateStore's Open counts its calls and waits for gate to close, then
// finds nothing.
type gateStore struct {
	gate  chan struct{}
	opens atomic.Int64
}

func (s *gateStore) Login(context.Context, string, string) error { return nil }
func (s *gateStore) LoggedIn() bool                              { return true }
func (s *gateStore) CacheDir() string                            { return "/cache" }
func (s *gateStore) Upload(context.Context, string, string, io.Reader) (int64, error) {
	return 0, resources.ErrNotFound
}
func (s *gateStore) Open(ctx context.Context, folder, name string) (*resources.Resource, error) {
	s.opens.Add(1)
	select {
	case <-s.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("open %s/%s: %w", folder, name, resources.ErrNotFound)
}

// waitFinished waits until every tracked item is done or failed.
func waitFinished(t *testing.T, p *Prefetcher) []PrefetchItem {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := p.Status()
		n := 0
		for _, it := range st {
			if it.State == PrefetchDone || it.State == PrefetchError {
				n++
			}
		}
		if n == len(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("not finished: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPrefetchQueue: an item asked for while queued or running is not
// fetched twice, at most prefetchWorkers run at once, an item asked for
// again once finished is fetched again, and past maxPrefetchItems
// unfinished items a new one is answered in state error, untracked.
func TestPrefetchQueue(t *testing.T) {
	st := &gateStore{gate: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := NewPrefetcher(PrefetchConfig{Store: st, Context: ctx})

	items := [][2]string{{"m", "a"}, {"m", "b"}, {"m", "c"}}
	p.Add(items)
	got := p.Add(items)
	for _, it := range got {
		if it.State != PrefetchQueued && it.State != PrefetchRunning {
			t.Errorf("asked again while pending: %+v", it)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the workers take what they may
	if n := st.opens.Load(); n != prefetchWorkers {
		t.Errorf("%d opens at once, want %d (the workers)", n, prefetchWorkers)
	}
	close(st.gate)
	done := waitFinished(t, p)
	if len(done) != 3 || st.opens.Load() != 3 {
		t.Fatalf("%d items, %d opens; want 3 and 3: %+v", len(done), st.opens.Load(), done)
	}
	for _, it := range done {
		if it.State != PrefetchError || !strings.Contains(it.Error, "no such resource") {
			t.Errorf("%+v, want error, no such resource", it)
		}
	}
	p.Add(items[:1])
	waitFinished(t, p)
	if n := st.opens.Load(); n != 4 {
		t.Errorf("a finished item asked again: %d opens in all, want 4", n)
	}

	// A full queue: maxPrefetchItems unfinished items behind a closed gate.
	full := &gateStore{gate: make(chan struct{})}
	q := NewPrefetcher(PrefetchConfig{Store: full, Context: ctx})
	var many [][2]string
	for i := range maxPrefetchItems {
		many = append(many, [2]string{"m", fmt.Sprintf("r%d", i)})
	}
	q.Add(many)
	over := q.Add([][2]string{{"m", "one-more"}})
	if len(over) != 1 || over[0].State != PrefetchError || !strings.Contains(over[0].Error, "queue full") {
		t.Errorf("past a full queue: %+v, want state error, queue full", over)
	}
	if n := len(q.Status()); n != maxPrefetchItems {
		t.Errorf("%d items tracked, want %d", n, maxPrefetchItems)
	}
	// Once they are finished, the oldest finished give way to new ones.
	close(full.gate)
	waitFinished(t, q)
	if got := q.Add([][2]string{{"m", "one-more"}}); got[0].State == PrefetchError {
		t.Errorf("after the queue drained: %+v", got)
	}
	st2 := q.Status()
	if len(st2) != maxPrefetchItems || st2[len(st2)-1].Name != "one-more" || st2[0].Name != "r1" {
		t.Errorf("after one more: %d items, first %s, last %s; want %d, r1, one-more",
			len(st2), st2[0].Name, st2[len(st2)-1].Name, maxPrefetchItems)
	}
	cancel()
}
