package main

import (
	"fmt"
	"io"
	"time"
)

// progress shows one line on a terminal, rewritten at most five times a
// second: "OP: 12.0/30.0 MiB (40%), 8.1 MiB/s, 0:02 left", and when done
// "OP: 30.0 MiB in 3.7s, 8.1 MiB/s". The rate is the average since the
// start, which steadies the estimate. A nil *progress (not a terminal)
// shows nothing.
type progress struct {
	w           io.Writer
	op          string
	total, done int64 // total < 0: unknown
	start, last time.Time
}

// newProgress returns a progress line for op on w, or nil when w is not a
// terminal. total is the expected byte count, -1 when not known.
func newProgress(w io.Writer, op string, total int64) *progress {
	if !isTerminal(w) {
		return nil
	}
	return &progress{w: w, op: op, total: total, start: time.Now()}
}

// add counts n more bytes.
func (p *progress) add(n int) {
	if p != nil {
		p.set(p.done + int64(n))
	}
}

// set says done bytes are done.
func (p *progress) set(done int64) {
	if p == nil {
		return
	}
	p.done = done
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		fmt.Fprint(p.w, "\r"+p.line(now)+"\x1b[K")
	}
}

func (p *progress) line(now time.Time) string {
	const mib = 1 << 20
	s := fmt.Sprintf("%s: %.1f MiB", p.op, float64(p.done)/mib)
	if p.total > 0 {
		s = fmt.Sprintf("%s: %.1f/%.1f MiB (%d%%)", p.op, float64(p.done)/mib, float64(p.total)/mib, p.done*100/p.total)
	}
	elapsed := now.Sub(p.start).Seconds()
	if elapsed < 0.2 || p.done == 0 {
		return s
	}
	rate := float64(p.done) / elapsed
	s += fmt.Sprintf(", %.1f MiB/s", rate/mib)
	if p.total > 0 && p.done < p.total {
		left := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
		s += ", " + clock(left) + " left"
	}
	return s
}

// finish ends the line with the total, the time taken and the rate.
func (p *progress) finish() {
	if p == nil {
		return
	}
	d := time.Since(p.start)
	took := fmt.Sprintf("%.1fs", d.Seconds())
	if d >= time.Minute {
		took = clock(d)
	}
	rate := float64(p.done) / max(d.Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s: %.1f MiB in %s, %.1f MiB/s\x1b[K\n", p.op, float64(p.done)/(1<<20), took, rate/(1<<20))
}

// clock writes d as m:ss, or h:mm:ss from an hour on.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// progressReader counts what is read through it.
type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}
