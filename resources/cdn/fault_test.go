package cdn_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/cdn/cdntest"
)

// viaProxy puts a 3 MiB object and returns a client that reads it through
// a fault proxy.
func viaProxy(t *testing.T) (*cdn.Client, *cdntest.Proxy, string, []byte) {
	mc := cdntest.Shared(t)
	bucket := mc.NewBucket(t)
	data := random(t, 3<<20)
	direct, err := cdn.New(mc.Config(bucket), cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := direct.Put(ctx(t), "f", "m", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	proxy := cdntest.NewProxy(t, mc.Endpoint)
	cfg := mc.Config(bucket)
	cfg.Host = proxy.URL()
	cl, err := cdn.New(cfg, cdn.Options{RangeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return cl, proxy, obj.ETag, data
}

func TestRangedReadMovesOnlyTheRange(t *testing.T) {
	cl, proxy, etag, data := viaProxy(t)
	p := make([]byte, 1000)
	if n, err := cl.ReadAt(ctx(t), "f", "m", etag, p, 2<<20); err != nil || n != 1000 || !bytes.Equal(p, data[2<<20:2<<20+1000]) {
		t.Fatalf("read: %d, %v", n, err)
	}
	if got := proxy.BytesFromUpstream(); got < 1000 || got > 8000 {
		t.Fatalf("%d bytes came from the CDN for a 1000-byte range", got)
	}
}

func TestReadResumesAfterFault(t *testing.T) {
	for _, mode := range []struct {
		name string
		m    cdntest.FaultMode
	}{{"cut", cdntest.Cut}, {"reset", cdntest.Reset}, {"stall", cdntest.Stall}} {
		t.Run(mode.name, func(t *testing.T) {
			cl, proxy, etag, data := viaProxy(t)
			proxy.Inject(cdntest.Fault{Mode: mode.m, After: 300 << 10, Times: 1})
			p := make([]byte, 2<<20)
			n, err := cl.ReadAt(ctx(t), "f", "m", etag, p, 1<<20)
			if err != nil || n != len(p) || !bytes.Equal(p, data[1<<20:]) {
				t.Fatalf("read: %d, %v, equal %v", n, err, bytes.Equal(p, data[1<<20:]))
			}
			if proxy.Conns() < 2 {
				t.Fatalf("no second connection: the fault never struck")
			}
			// The resume asked only for the rest: well under two full reads.
			if up := proxy.BytesFromUpstream(); up > int64(len(p))+(400<<10) {
				t.Fatalf("%d bytes from upstream for a %d-byte read", up, len(p))
			}
		})
	}
}

func TestReadGivesUpOnPersistentFault(t *testing.T) {
	cl, proxy, etag, data := viaProxy(t)
	proxy.Inject(cdntest.Fault{Mode: cdntest.Cut, After: 64 << 10})
	p := make([]byte, 2<<20)
	n, err := cl.ReadAt(ctx(t), "f", "m", etag, p, 0)
	if err == nil || n >= len(p) || !bytes.Equal(p[:n], data[:n]) {
		t.Fatalf("read through a proxy that always cuts: %d, %v", n, err)
	}
	t.Logf("%d bytes, then: %v", n, err)
}

func TestReadHonoursContext(t *testing.T) {
	cl, proxy, etag, _ := viaProxy(t)
	cfg := cl.Config()
	cl, err := cdn.New(cfg, cdn.Options{RangeTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	proxy.Inject(cdntest.Fault{Mode: cdntest.Stall, After: 0})
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = cl.ReadAt(c, "f", "m", etag, make([]byte, 1<<20), 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled read: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stalled read returned after %v", d)
	}
}
