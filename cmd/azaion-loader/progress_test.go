package main

import (
	"bytes"
	"testing"
	"time"
)

// TestProgressLine: the line has the bytes, the share, the rate and the
// time left; without a total, the bytes and the rate.
func TestProgressLine(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		total, done int64
		after       time.Duration
		want        string
	}{
		{4 << 20, 0, 0, "load: 0.0/4.0 MiB (0%)"},
		{4 << 20, 1 << 20, time.Second, "load: 1.0/4.0 MiB (25%), 1.0 MiB/s, 0:03 left"},
		{4 << 20, 4 << 20, 2 * time.Second, "load: 4.0/4.0 MiB (100%), 2.0 MiB/s"},
		{300 << 20, 1 << 20, 10 * time.Second, "load: 1.0/300.0 MiB (0%), 0.1 MiB/s, 49:50 left"},
		{8000 << 20, 1 << 20, 10 * time.Second, "load: 1.0/8000.0 MiB (0%), 0.1 MiB/s, 22:13:10 left"},
		{-1, 3 << 19, time.Second, "load: 1.5 MiB, 1.5 MiB/s"},
	} {
		p := &progress{w: new(bytes.Buffer), op: "load", total: c.total, done: c.done, start: start}
		if got := p.line(start.Add(c.after)); got != c.want {
			t.Errorf("%d of %d bytes after %s: %q, want %q", c.done, c.total, c.after, got, c.want)
		}
	}
	// Not a terminal: no progress, and its methods do nothing.
	var buf bytes.Buffer
	p := newProgress(&buf, "load", 10)
	p.add(5)
	p.set(10)
	p.finish()
	if p != nil || buf.Len() != 0 {
		t.Errorf("progress on a buffer: %v, %q", p, buf.String())
	}
}
