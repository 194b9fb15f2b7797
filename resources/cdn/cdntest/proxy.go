package cdntest

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultMode is what a Fault does to a response.
type FaultMode int

const (
	// Stall stops passing the response on; the connection stays open until
	// the client gives up or the proxy closes.
	Stall FaultMode = iota + 1
	// Reset closes the connection with a TCP RST.
	Reset
	// Cut closes the connection cleanly (FIN), a body cut short.
	Cut
)

// Fault strikes a connection once After more bytes from the server have
// passed on it, counted from when the fault was injected. Times is how many
// connections it strikes; 0 is every one until Clear.
type Fault struct {
	Mode  FaultMode
	After int64
	Times int
}

// Proxy is a TCP proxy on 127.0.0.1 in front of a server: it counts the
// bytes the server sends and can stall, reset or cut its responses.
type Proxy struct {
	ln     net.Listener
	target string
	up     atomic.Int64
	accept atomic.Int64
	struck atomic.Int64
	closed chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	fault    *armed
	shape    Shape
	conns    map[*link]struct{}
	maxConns int // the most conns open at once since ResetMaxConns
}

// Shape makes a proxy's new connections behave like a distant, narrow
// link: Latency is added to every byte each way (a round trip gains twice
// it), and Rate caps the bytes per second the server sends on each
// connection (0: no cap), as a CDN's per-connection limit does.
type Shape struct {
	Latency time.Duration
	Rate    int64
}

// SetShape shapes the connections accepted from now on.
func (p *Proxy) SetShape(s Shape) {
	p.mu.Lock()
	p.shape = s
	p.mu.Unlock()
}

type armed struct {
	Fault
	left int // strikes left; < 0 unlimited
}

// NewProxy starts a proxy to target (host:port, or an http:// URL) and
// closes it when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := ListenProxy(target)
	if err != nil {
		t.Fatalf("cdntest: proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// ListenProxy is NewProxy for callers without a testing.TB; they Close it.
func ListenProxy(target string) (*Proxy, error) {
	target = strings.TrimPrefix(target, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, closed: make(chan struct{}), conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is http:// and Addr, for a cdn.Config's Host.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// BytesFromUpstream is how many bytes the server has sent through the proxy.
func (p *Proxy) BytesFromUpstream() int64 { return p.up.Load() }

// Conns is how many client connections the proxy has accepted.
func (p *Proxy) Conns() int64 { return p.accept.Load() }

// Struck is how many connections faults have struck.
func (p *Proxy) Struck() int64 { return p.struck.Load() }

// OpenConns is how many client connections are open now.
func (p *Proxy) OpenConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// MaxConns is the most client connections open at once since the proxy
// started or ResetMaxConns: with clients that reuse idle connections, an
// upper bound on the requests in flight at once, and, less the
// connections open before, a lower bound on them.
func (p *Proxy) MaxConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxConns
}

// ResetMaxConns restarts MaxConns from the connections open now.
func (p *Proxy) ResetMaxConns() {
	p.mu.Lock()
	p.maxConns = len(p.conns)
	p.mu.Unlock()
}

// Inject arms f, replacing any fault armed before.
func (p *Proxy) Inject(f Fault) {
	left := f.Times
	if left <= 0 {
		left = -1
	}
	p.mu.Lock()
	p.fault = &armed{Fault: f, left: left}
	p.mu.Unlock()
}

// Clear disarms the fault; connections stalled already stay stalled.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.fault = nil
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	select {
	case <-p.closed:
		return
	default:
	}
	close(p.closed)
	p.ln.Close()
	p.mu.Lock()
	for l := range p.conns {
		l.close()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accept.Add(1)
		p.wg.Add(1)
		go p.handle(c)
	}
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		if l.server != nil {
			l.server.Close()
		}
	})
}

func (p *Proxy) handle(c net.Conn) {
	defer p.wg.Done()
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	l := &link{client: c, server: s, done: make(chan struct{})}
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		l.close()
		return
	default:
	}
	p.conns[l] = struct{}{}
	p.maxConns = max(p.maxConns, len(p.conns))
	shape := p.shape
	p.mu.Unlock()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	var toServer, toClient io.Writer = s, c
	var down *delayLine
	if shape != (Shape{}) {
		up := newDelayLine(s, shape.Latency, 0)
		down = newDelayLine(c, shape.Latency, shape.Rate)
		toServer, toClient = up, down
		go func() { <-l.done; up.close(); down.close() }()
	}
	go func() {
		io.Copy(toServer, c)
		l.close()
	}()
	p.pump(l, toClient)
	if down != nil {
		down.drain() // the server is done; what is in flight still arrives
	}
}

// pump passes the server's bytes to the client through w, applying the
// armed fault.
func (p *Proxy) pump(l *link, w io.Writer) {
	buf := make([]byte, 32<<10)
	var seen *armed
	var since int64
	for {
		n, err := l.server.Read(buf)
		if n > 0 {
			p.up.Add(int64(n))
			data := buf[:n]
			if f := p.current(); f != nil {
				if f != seen {
					seen, since = f, 0
				}
				if allowed := f.After - since; allowed < int64(len(data)) && p.strike(f) {
					if allowed > 0 {
						w.Write(data[:allowed])
					}
					p.apply(l, f.Mode)
					return
				}
				since += int64(len(data))
			}
			if _, werr := w.Write(data); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) current() *armed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault
}

// strike uses up one of f's strikes, reporting false when none is left.
func (p *Proxy) strike(f *armed) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.left == 0 {
		return false
	}
	if f.left > 0 {
		f.left--
	}
	p.struck.Add(1)
	return true
}

func (p *Proxy) apply(l *link, mode FaultMode) {
	switch mode {
	case Stall:
		select {
		case <-l.done:
		case <-p.closed:
		}
	case Reset:
		if tc, ok := l.client.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	l.close()
}

// delayLine writes what it is given to w Latency later, paced to at most
// rate bytes per second (0: unpaced), without holding up the writer: like
// a link, it carries a bandwidth-delay product in flight. What it holds is
// bounded (twice that product, at least 256 KiB), so the sender feels the
// link's pace through TCP as it would.
type delayLine struct {
	w     io.Writer
	delay time.Duration
	rate  int64
	limit int

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []delayed
	held   int
	closed bool
	err    error
	done   chan struct{}
}

type delayed struct {
	b   []byte
	due time.Time
}

func newDelayLine(w io.Writer, delay time.Duration, rate int64) *delayLine {
	limit := 256 << 10
	if rate > 0 {
		limit = max(limit, int(2*rate*int64(delay)/int64(time.Second)))
	} else {
		limit = max(limit, 8<<20)
	}
	d := &delayLine{w: w, delay: delay, rate: rate, limit: limit, done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	go d.run()
	return d
}

func (d *delayLine) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.held > 0 && d.held+len(b) > d.limit && !d.closed && d.err == nil {
		d.cond.Wait()
	}
	if d.closed {
		return 0, net.ErrClosed
	}
	if d.err != nil {
		return 0, d.err
	}
	d.queue = append(d.queue, delayed{b, time.Now().Add(d.delay)})
	d.held += len(b)
	d.cond.Broadcast()
	return len(p), nil
}

func (d *delayLine) run() {
	defer close(d.done)
	var next time.Time // when the pace lets the next byte go
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if d.closed {
			d.mu.Unlock()
			return
		}
		c := d.queue[0]
		d.mu.Unlock()
		time.Sleep(time.Until(c.due))
		if d.rate > 0 {
			if now := time.Now(); next.Before(now) {
				next = now
			}
			time.Sleep(time.Until(next))
			next = next.Add(time.Duration(int64(len(c.b)) * int64(time.Second) / d.rate))
		}
		_, err := d.w.Write(c.b)
		d.mu.Lock()
		d.queue = d.queue[1:]
		d.held -= len(c.b)
		if err != nil {
			d.err = err
		}
		d.cond.Broadcast()
		d.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// drain waits until everything written has been passed on, or the line
// is closed.
func (d *delayLine) drain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.held > 0 && !d.closed && d.err == nil {
		d.cond.Wait()
	}
}

// close drops what is still in flight.
func (d *delayLine) close() {
	d.mu.Lock()
	d.closed = true
	d.cond.Broadcast()
	d.mu.Unlock()
}
