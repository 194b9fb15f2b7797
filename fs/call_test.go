package fs

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCallDropGivesUp: a call whose caller gives up (interrupted, or out of
// time) returns at once, and its result is dropped only once fn has
// returned it, never while fn may still write into it.
func TestCallDropGivesUp(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
		cancel  bool
		want    error
	}{
		{"interrupted", time.Minute, true, context.Canceled},
		{"out of time", 50 * time.Millisecond, false, context.DeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRoot(nil, Options{ReadTimeout: c.timeout})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			release := make(chan struct{})
			dropped := make(chan int, 2)
			if c.cancel {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			_, err := callDrop(ctx, r, func(context.Context) (int, error) {
				<-release // a store that ignores its context
				return 7, nil
			}, func(v int) { dropped <- v })
			if !errors.Is(err, c.want) {
				t.Fatalf("callDrop: %v, want %v", err, c.want)
			}
			select {
			case v := <-dropped:
				t.Fatalf("result %d dropped while fn was still running", v)
			case <-time.After(50 * time.Millisecond):
			}
			close(release)
			select {
			case v := <-dropped:
				if v != 7 {
					t.Fatalf("dropped %d, want fn's result 7", v)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the abandoned result was never dropped")
			}
			select {
			case v := <-dropped:
				t.Fatalf("result %d dropped twice", v)
			case <-time.After(20 * time.Millisecond):
			}
		})
	}
}

// TestCallDropResults: a result with an error goes to drop and the caller
// gets the error; a result without one goes to the caller, not to drop.
func TestCallDropResults(t *testing.T) {
	r := newRoot(nil, Options{ReadTimeout: time.Minute})
	errFail := errors.New("fetch failed")
	var dropped []int
	_, err := callDrop(context.Background(), r, func(context.Context) (int, error) { return 3, errFail },
		func(v int) { dropped = append(dropped, v) })
	if !errors.Is(err, errFail) || len(dropped) != 1 || dropped[0] != 3 {
		t.Fatalf("failed call: err %v, dropped %v; want the error and [3]", err, dropped)
	}
	dropped = nil
	v, err := callDrop(context.Background(), r, func(context.Context) (int, error) { return 5, nil },
		func(v int) { dropped = append(dropped, v) })
	if err != nil || v != 5 || len(dropped) != 0 {
		t.Fatalf("good call: %d, %v, dropped %v; want 5, nil, none", v, err, dropped)
	}
}
