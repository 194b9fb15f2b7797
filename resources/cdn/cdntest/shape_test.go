package cdntest

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestProxyShape: through a shaped proxy a round trip takes at least twice
// the latency, a download is paced to the rate, and every byte arrives.
func TestProxyShape(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 2 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				c.Write(data)
			}()
		}
	}()
	p := NewProxy(t, ln.Addr().String())
	const latency, rate = 20 * time.Millisecond, 8 << 20
	p.SetShape(Shape{Latency: latency, Rate: rate})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte{1})
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	rtt := time.Since(start)
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if got := append(first, rest...); !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, not the %d sent", len(got), len(data))
	}
	if rtt < 2*latency {
		t.Errorf("first byte after %v, want at least %v", rtt, 2*latency)
	}
	if min := time.Duration(size) * time.Second / rate; took < min {
		t.Errorf("%d bytes in %v, faster than %d B/s allows (%v)", size, took, rate, min)
	}
}
