package fs

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStallClock: the reads of one handle share one bound of time waited
// without a byte: an interrupted read's wait counts against the next; a
// read that gets bytes restarts the clock; once the bound runs out the
// handle's reads fail at once (errStalled) for retryWindow, then wait
// afresh.
func TestStallClock(t *testing.T) {
	const bound = 400 * time.Millisecond
	r := newRoot(nil, Options{ReadTimeout: bound})
	var c stallClock
	stuck := func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
	quick := func(context.Context) (int, error) { return 1, nil }
	timed := func(ctx context.Context, fn func(context.Context) (int, error)) (time.Duration, error) {
		start := time.Now()
		_, err := callStalled(ctx, r, &c, fn, nil)
		return time.Since(start), err
	}

	// 300 ms of waiting, then the reader is interrupted (EINTR).
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if _, err := timed(ctx, stuck); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupted read: %v", err)
	}
	cancel()
	// The next read has what is left of the bound, not a fresh one.
	if d, err := timed(context.Background(), stuck); !errors.Is(err, context.DeadlineExceeded) || d > 250*time.Millisecond {
		t.Fatalf("second read: %v after %v, want DeadlineExceeded within ~100 ms", err, d)
	}
	// The bound ran out: reads fail at once, even one that would succeed.
	if d, err := timed(context.Background(), quick); err != errStalled || d > 50*time.Millisecond {
		t.Fatalf("read after the bound ran out: %v after %v, want errStalled at once", err, d)
	}
	time.Sleep(retryWindow)
	if _, err := timed(context.Background(), quick); err != nil {
		t.Fatalf("read after retryWindow: %v", err)
	}

	// Bytes restart the clock: 300 ms waited, bytes, 300 ms waited again.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	timed(ctx, stuck)
	cancel()
	if _, err := timed(context.Background(), quick); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if d, err := timed(ctx, stuck); d < 250*time.Millisecond {
		t.Fatalf("read after bytes arrived: %v after %v, want the fresh bound", err, d)
	}
}
