package bufpool

import "sync"

// Budget is a number of bytes that several holders share, for buffers they
// may do without: read-ahead windows take from it only while it has room,
// so that many readers at once hold no more than the budget between them
// and each holds about its share. A nil *Budget has no limit.
type Budget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	peak    int64
	holders int
}

// NewBudget returns a Budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit is the budget's size; 0 for a nil Budget (no limit).
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Join counts a holder in, for the shares; Leave counts it out.
func (b *Budget) Join() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.holders++
	b.mu.Unlock()
}

// Leave undoes a Join.
func (b *Budget) Leave() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.holders--
	b.mu.Unlock()
}

// TryTake takes n bytes for a holder that holds held bytes already. It
// fails when the budget lacks room, or when the holder would hold more
// than its share (the limit split between the holders that joined, but
// never less than n, so that a lone request fits while there is room).
func (b *Budget) TryTake(n, held int64) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	share := max(b.limit/int64(max(b.holders, 1)), n)
	if b.used+n > b.limit || held+n > share {
		return false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return true
}

// Give returns n bytes taken.
func (b *Budget) Give(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// Used is the bytes taken now; Peak the most taken at once.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak is the most bytes taken at once.
func (b *Budget) Peak() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}
