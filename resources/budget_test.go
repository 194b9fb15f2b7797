package resources

import (
	"context"
	"crypto/sha256"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/resources/bufpool"
)

// budgetPart is a big part in memory that is slow to read, as a cold
// cache is, and tells the read-ahead budget its readers share.
type budgetPart struct {
	BytesPart
	budget *bufpool.Budget
}

func (p budgetPart) ReadAt(ctx context.Context, b []byte, off int64) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return p.BytesPart.ReadAt(ctx, b, off)
}

func (p budgetPart) ReadAheadBudget() *bufpool.Budget { return p.budget }

// TestReadAheadBudgetShared: readers reading sequentially at once share
// one budget: what their windows hold together never exceeds it, each
// still reads its exact bytes, and once they go idle the budget is whole.
func TestReadAheadBudgetShared(t *testing.T) {
	ctx := context.Background()
	const readers = 8
	budget := bufpool.NewBudget(3 * aheadChunk)
	plain, small, big := splitOf(t, 10<<20+77)
	want := sha256.Sum256(plain)
	rs := make([]*Reader, readers)
	for i := range rs {
		r, err := NewReader(ctx, testKey, small, budgetPart{big, budget}, int64(len(big)))
		if err != nil {
			t.Fatal(err)
		}
		if r.ahead == nil || r.ahead.budget != budget {
			t.Fatal("reader without read-ahead on the shared budget")
		}
		rs[i] = r
	}
	var wg sync.WaitGroup
	sums := make([][32]byte, readers)
	errs := make([]error, readers)
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			buf := make([]byte, 128<<10)
			for off := int64(0); off < r.Size(); {
				n, err := r.ReadAt(ctx, buf, off)
				h.Write(buf[:n])
				off += int64(n)
				if err != nil && err != io.EOF {
					errs[i] = err
					return
				}
				if got := budget.Used(); got > budget.Limit() {
					errs[i] = errOver(got)
					return
				}
			}
			copy(sums[i][:], h.Sum(nil))
		}()
	}
	wg.Wait()
	for i := range rs {
		if errs[i] != nil {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
		if sums[i] != want {
			t.Errorf("reader %d: SHA-256 %x, want %x", i, sums[i], want)
		}
	}
	if p := budget.Peak(); p > budget.Limit() || p == 0 {
		t.Errorf("budget peak %d bytes: want within (0, %d]", p, budget.Limit())
	}
	// Idle readers (the idle timer's drop) give everything back.
	for _, r := range rs {
		r.ahead.drop()
	}
	deadline := time.Now().Add(30 * time.Second)
	for budget.Used() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if u := budget.Used(); u != 0 {
		t.Errorf("%d bytes of the budget still held after every reader dropped its chunks", u)
	}
}

type errOver int64

func (e errOver) Error() string { return "read-ahead holds more than the budget" }
