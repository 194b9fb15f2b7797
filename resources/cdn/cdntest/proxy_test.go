package cdntest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// server sends size bytes to every connection, then closes it.
func server(t *testing.T, size int) (string, []byte) {
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write(data)
			}()
		}
	}()
	return ln.Addr().String(), data
}

// fetch reads from the proxy until EOF, an error or 2s of silence.
// redials counts the dials fetch tried again.
var redials int64

func fetch(t *testing.T, p *Proxy) ([]byte, error) {
	// A fresh loopback listener now and then answers a connect with a
	// reset (seen about once in 30 runs on a busy machine, never past the
	// second try); the faults under test strike after the connection is up,
	// so a dial is tried up to three times.
	var c net.Conn
	var err error
	for try := 0; try < 3; try++ {
		if c, err = net.Dial("tcp", p.Addr()); !errors.Is(err, syscall.ECONNRESET) {
			break
		}
		redials++ // the proxy accepted the connection that was reset
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	return io.ReadAll(c)
}

func TestProxy(t *testing.T) {
	redials = 0
	addr, data := server(t, 256<<10)
	p := NewProxy(t, addr)

	got, err := fetch(t, p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("clean pass: %d bytes, %v", len(got), err)
	}
	if n := p.BytesFromUpstream(); n != int64(len(data)) {
		t.Fatalf("counted %d bytes from upstream, want %d", n, len(data))
	}

	p.Inject(Fault{Mode: Cut, After: 1000, Times: 1})
	got, err = fetch(t, p)
	if err != nil || !bytes.Equal(got, data[:1000]) {
		t.Fatalf("cut: %d bytes, %v", len(got), err)
	}
	got, err = fetch(t, p) // Times: 1, so the next one passes
	if err != nil || len(got) != len(data) {
		t.Fatalf("after the cut: %d bytes, %v", len(got), err)
	}

	p.Inject(Fault{Mode: Reset, After: 5000})
	got, err = fetch(t, p)
	if !errors.Is(err, syscall.ECONNRESET) || len(got) > 5000 || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("reset: %d bytes, %v", len(got), err)
	}

	p.Inject(Fault{Mode: Stall, After: 3000})
	start := time.Now()
	got, err = fetch(t, p)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !bytes.Equal(got, data[:3000]) || time.Since(start) < time.Second {
		t.Fatalf("stall: %d bytes, %v after %v", len(got), err, time.Since(start))
	}

	p.Clear()
	if got, err := fetch(t, p); err != nil || len(got) != len(data) {
		t.Fatalf("after clear: %d bytes, %v", len(got), err)
	}
	if p.Conns() != 6+redials {
		t.Fatalf("%d connections, want 6 (+%d dials tried again)", p.Conns(), redials)
	}
}
