package cdntest

import (
	"io"
	"net"
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
	closed chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	fault *armed
	conns map[*link]struct{}
}

type armed struct {
	Fault
	left int // strikes left; < 0 unlimited
}

// NewProxy starts a proxy to target (host:port, or an http:// URL) and
// closes it when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	if len(target) > 7 && target[:7] == "http://" {
		target = target[7:]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cdntest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, closed: make(chan struct{}), conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is http:// and Addr, for a cdn.Config's Host.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// BytesFromUpstream is how many bytes the server has sent through the proxy.
func (p *Proxy) BytesFromUpstream() int64 { return p.up.Load() }

// Conns is how many client connections the proxy has accepted.
func (p *Proxy) Conns() int64 { return p.accept.Load() }

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
	p.mu.Unlock()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	go func() {
		io.Copy(s, c)
		l.close()
	}()
	p.pump(l)
}

// pump passes the server's bytes to the client, applying the armed fault.
func (p *Proxy) pump(l *link) {
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
						l.client.Write(data[:allowed])
					}
					p.apply(l, f.Mode)
					return
				}
				since += int64(len(data))
			}
			if _, werr := l.client.Write(data); werr != nil {
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
