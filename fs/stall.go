package fs

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// errStalled fails a read at once because its handle's bound ran out
// moments ago; the read that ran it out was logged.
var errStalled = fmt.Errorf("%w: the reader waited its read timeout without a byte", context.DeadlineExceeded)

// stallClock bounds how long one open file's reader waits for the store
// without a byte arriving, across its reads: dd reads through the kernel's
// read-ahead, so several reads of the mount may each wait part of the
// bound, and a per-request bound would let the reader wait a multiple of
// it. Time counts while at least one read of the handle waits; it restarts
// when a waiting read gets its bytes.
type stallClock struct {
	mu      sync.Mutex
	stalled time.Duration // waited without bytes, in intervals now closed
	since   time.Time     // start of the open interval; zero when no read waits
	waiting int
	ranOut  time.Time // when the bound last ran out
}

// begin starts a read's wait; false when the bound ran out less than
// retryWindow ago, so the read fails at once (the kernel's retries and the
// reader's next read come right after a failure).
func (c *stallClock) begin(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ranOut.IsZero() {
		if now.Sub(c.ranOut) < retryWindow {
			return false
		}
		c.ranOut = time.Time{}
		if c.waiting == 0 {
			c.stalled = 0 // a fresh bound after the pause
		}
	}
	if c.waiting == 0 {
		c.since = now
	}
	c.waiting++
	return true
}

// left is how much of bound the handle has left at now.
func (c *stallClock) left(now time.Time, bound time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bound - c.stalled - now.Sub(c.since)
}

// end ends a read's wait: got says bytes arrived (the clock restarts),
// ranOut that the bound ran out (the next reads fail at once for a while,
// then start afresh).
func (c *stallClock) end(now time.Time, got, ranOut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting--
	if got {
		c.stalled, c.since = 0, now
	}
	if ranOut {
		c.ranOut = now // the other waiting reads run out with this one
	}
	if c.waiting == 0 {
		c.stalled += now.Sub(c.since)
		c.since = time.Time{}
	}
}

// callStalled is callDrop for a read of a handle: it gives up when the
// handle's clock runs out, or after ReadTimeout of its own, whichever is
// first, and reports to the clock how the wait ended.
func callStalled[T any](ctx context.Context, r *root, c *stallClock, fn func(ctx context.Context) (T, error), drop func(T)) (T, error) {
	var zero T
	start := time.Now()
	if !c.begin(start) {
		return zero, errStalled
	}
	bound := r.opt.ReadTimeout
	own := start.Add(bound)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn(ctx)
		ch <- result{v, err}
	}()
	timer := time.NewTimer(min(c.left(start, bound), bound))
	defer timer.Stop()
	for {
		select {
		case res := <-ch:
			c.end(time.Now(), res.err == nil, false)
			if res.err != nil && drop != nil {
				drop(res.v)
			}
			return res.v, res.err
		case <-ctx.Done():
			c.end(time.Now(), false, false)
		case now := <-timer.C:
			// Another read's bytes may have restarted the clock.
			if d := min(c.left(now, bound), own.Sub(now)); d > 0 {
				timer.Reset(d)
				continue
			}
			c.end(now, false, true)
			cancel(context.DeadlineExceeded)
		}
		if drop != nil {
			go func() { drop((<-ch).v) }()
		}
		return zero, context.Cause(ctx)
	}
}
