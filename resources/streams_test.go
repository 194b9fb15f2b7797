package resources_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// inFlight is an http.RoundTripper that counts the CDN requests in flight,
// from the request until its body is closed, and keeps the most at once.
// It answers the first refuse GETs of a range past the first segment (8
// MiB) with 503 Slow Down, as an overloaded S3 does.
type inFlight struct {
	base http.RoundTripper

	mu       sync.Mutex
	now, max int
	refuse   int
	refused  int
	gets     int // GETs made
}

func (c *inFlight) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	var first int64
	fmt.Sscanf(req.Header.Get("Range"), "bytes=%d-", &first)
	if c.refused < c.refuse && req.Method == http.MethodGet && first >= 8<<20 {
		c.refused++
		c.mu.Unlock()
		body := "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	c.now++
	c.max = max(c.max, c.now)
	if req.Method == http.MethodGet {
		c.gets++
	}
	c.mu.Unlock()
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		c.done()
		return nil, err
	}
	resp.Body = &countedBody{ReadCloser: resp.Body, c: c}
	return resp, nil
}

func (c *inFlight) done() {
	c.mu.Lock()
	c.now--
	c.mu.Unlock()
}

func (c *inFlight) most() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

type countedBody struct {
	io.ReadCloser
	c    *inFlight
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(b.c.done)
	return b.ReadCloser.Close()
}

// wanBed uploads a resource of size bytes and returns the bed, with its CDN proxy
// shaped as a far, narrow link (10 ms each way, 4 MB/s per connection),
// the plaintext, a second logged-in Store whose CDN requests are counted,
// and the counter.
func wanBed(t *testing.T, size int, o testbed.StoreOptions) (*testbed.Bed, string, []byte, *resources.Store, *resources.Store, *inFlight) {
	t.Helper()
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	up := bed.LoggedIn(t, testbed.StoreOptions{})
	plain := uploadRandom(t, up, folder, "m.bin", size)
	bed.CDNProxy.SetShape(cdntest.Shape{Latency: 10 * time.Millisecond, Rate: 4 << 20})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	count := &inFlight{base: tr}
	o.CDNHTTP = &http.Client{Transport: count}
	return bed, folder, plain, up, bed.LoggedIn(t, o), count
}

// readSequential reads res from 0 in 1 MiB reads, as dd would, and returns
// the SHA-256 of the bytes read and the first error.
func readSequential(ctx context.Context, res *resources.Resource) ([32]byte, int64, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var off int64
	for off < res.Size() {
		n, err := res.ReadAt(ctx, buf, off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && !(errors.Is(err, io.EOF) && off == res.Size()) {
			return [32]byte(h.Sum(nil)), off, err
		}
	}
	return [32]byte(h.Sum(nil)), off, nil
}

// TestSequentialReadParallelStreams: a cold sequential read across a far,
// narrow link has several ranged GETs in flight at once and returns the
// exact bytes.
func TestSequentialReadParallelStreams(t *testing.T) {
	bed, folder, plain, _, s, count := wanBed(t, 24<<20+123, testbed.StoreOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	open := bed.CDNProxy.OpenConns()
	bed.CDNProxy.ResetMaxConns()
	res, err := s.Open(ctx, folder, "m.bin")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, _, err := readSequential(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha256.Sum256(plain) {
		t.Fatal("bytes read differ from those uploaded")
	}
	inFlight, conns := count.most(), bed.CDNProxy.MaxConns()-open
	t.Logf("read %d MiB in %v: at most %d CDN requests in flight, %d connections open at once at the proxy",
		len(plain)>>20, time.Since(start).Round(time.Millisecond), inFlight, conns)
	if inFlight < 3 || conns < 3 {
		t.Fatalf("at most %d requests in flight (%d connections at the proxy), want several", inFlight, conns)
	}
}

// TestSmallColdReadOneRequest: a 4 KiB read at offset 0 of a cold resource
// costs the open's requests and no segment of its own.
func TestSmallColdReadOneRequest(t *testing.T) {
	bed, folder, plain, _, s, count := wanBed(t, 24<<20+123, testbed.StoreOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := bed.CDNProxy.BytesFromUpstream()
	res, err := s.Open(ctx, folder, "m.bin")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4096)
	if n, err := res.ReadAt(ctx, got, 0); err != nil || n != len(got) || !bytes.Equal(got, plain[:4096]) {
		t.Fatalf("read: %d, %v", n, err)
	}
	time.Sleep(500 * time.Millisecond) // anything started ahead shows by now
	if up := bed.CDNProxy.BytesFromUpstream() - before; up > 1<<20+64<<10 {
		t.Fatalf("%d bytes from the CDN for a 4 KiB read, want the first chunk's 1 MiB", up)
	}
	if n := count.most(); n > 2 {
		t.Fatalf("%d CDN requests in flight at once for a 4 KiB read", n)
	}
}

// TestSmallColdReadFirstBytes: a cold 4 KiB read at offset 0, or at a
// chunk boundary in the middle (whose CBC block before it ends the chunk
// before), returns the exact bytes and costs no more GETs than the open's
// two (tail, first chunk) and, in the middle, one more: the bytes it needs
// from the end of one chunk come with the GET of the next.
func TestSmallColdReadFirstBytes(t *testing.T) {
	for _, c := range []struct {
		name string
		off  int64
		gets int
	}{{"offset 0", 0, 2}, {"middle", 12 << 20, 3}} {
		t.Run(c.name, func(t *testing.T) {
			_, folder, plain, _, s, count := wanBed(t, 24<<20+123, testbed.StoreOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := s.Open(ctx, folder, "m.bin")
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4096)
			if n, err := res.ReadAt(ctx, got, c.off); err != nil || n != len(got) || sha256.Sum256(got) != sha256.Sum256(plain[c.off:c.off+4096]) {
				t.Fatalf("read at %d: %d, %v", c.off, n, err)
			}
			time.Sleep(500 * time.Millisecond) // anything started ahead shows by now
			count.mu.Lock()
			defer count.mu.Unlock()
			if count.gets > c.gets {
				t.Fatalf("%d CDN GETs for an open and a 4 KiB read at %d, want at most %d", count.gets, c.off, c.gets)
			}
		})
	}
}

// TestSmallColdReadReplaced: an object replaced after the open fails a
// cold read in the middle with cdn.ErrChanged, and a read at offset 0
// (whose chunk the open's GET brings) returns the old object's bytes or
// fails the same way: never a byte of the new object.
func TestSmallColdReadReplaced(t *testing.T) {
	_, folder, plain, up, s, _ := wanBed(t, 24<<20+123, testbed.StoreOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := s.Open(ctx, folder, "m.bin")
	if err != nil {
		t.Fatal(err)
	}
	uploadRandom(t, up, folder, "m.bin", len(plain))
	got := make([]byte, 4096)
	if n, err := res.ReadAt(ctx, got, 12<<20); !errors.Is(err, cdn.ErrChanged) {
		t.Fatalf("read in the middle after the replacement: %d, %v, want cdn.ErrChanged", n, err)
	}
	n, err := res.ReadAt(ctx, got, 0)
	switch {
	case err == nil:
		if !bytes.Equal(got[:n], plain[:n]) {
			t.Fatal("read at 0 after the replacement: bytes that are not the old object's")
		}
	case !errors.Is(err, cdn.ErrChanged):
		t.Fatalf("read at 0 after the replacement: %v, want the old bytes or cdn.ErrChanged", err)
	}
}

// TestSequentialReadStreamFaults: a stream reset, or stalled, in the middle
// of a segment is resumed on its own, and the read returns the exact bytes
// within its bound; so does a segment whose GET is answered 503.
func TestSequentialReadStreamFaults(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault cdntest.Fault
	}{
		{"reset", cdntest.Fault{Mode: cdntest.Reset, After: 3<<20 + 1234, Times: 1}},
		{"stall", cdntest.Fault{Mode: cdntest.Stall, After: 2<<20 + 777, Times: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A GET that sends nothing for 1 s resumes; a chunk has 20 s.
			bed, folder, plain, _, s, _ := wanBed(t, 24<<20+123, testbed.StoreOptions{Timeout: 20 * time.Second, RangeTimeout: time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := s.Open(ctx, folder, "m.bin")
			if err != nil {
				t.Fatal(err)
			}
			bed.CDNProxy.Inject(c.fault)
			defer bed.CDNProxy.Clear()
			sum, _, err := readSequential(ctx, res)
			if err != nil {
				t.Fatal(err)
			}
			if sum != sha256.Sum256(plain) {
				t.Fatal("bytes read differ from those uploaded")
			}
			if bed.CDNProxy.Struck() != 1 {
				t.Fatalf("%d connections struck, want 1", bed.CDNProxy.Struck())
			}
		})
	}
	t.Run("503", func(t *testing.T) {
		_, folder, plain, _, s, count := wanBed(t, 24<<20+123, testbed.StoreOptions{})
		count.mu.Lock()
		count.refuse = 2
		count.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := s.Open(ctx, folder, "m.bin")
		if err != nil {
			t.Fatal(err)
		}
		sum, _, err := readSequential(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		if sum != sha256.Sum256(plain) {
			t.Fatal("bytes read differ from those uploaded")
		}
		count.mu.Lock()
		defer count.mu.Unlock()
		if count.refused != 2 {
			t.Fatalf("%d GETs answered 503, want 2", count.refused)
		}
	})
}

// TestSequentialReadReplaced: an object replaced in the middle of a cold
// sequential read fails the read cleanly, with cdn.ErrChanged, and every
// chunk not fetched before fails the same way on whatever stream reads
// it: no byte of the new object is ever returned.
func TestSequentialReadReplaced(t *testing.T) {
	// 48 MiB: the segments the reader has started when the object is
	// replaced (those of its first 16 MiB) are not all of them.
	_, folder, plain, up, s, _ := wanBed(t, 48<<20+123, testbed.StoreOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := s.Open(ctx, folder, "m.bin")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	var off int64
	for ; off < 5<<20; off += int64(len(buf)) {
		if n, err := res.ReadAt(ctx, buf, off); err != nil || !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
			t.Fatalf("read at %d before the replacement: %d, %v", off, n, err)
		}
	}
	uploadRandom(t, up, folder, "m.bin", len(plain))
	var failed error
	for ; off < res.Size(); off += int64(len(buf)) {
		n, err := res.ReadAt(ctx, buf, off)
		if !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
			t.Fatalf("read at %d after the replacement: bytes that are not the old object's", off)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			failed = err
			break
		}
	}
	if !errors.Is(failed, cdn.ErrChanged) {
		t.Fatalf("sequential read after the replacement: %v, want cdn.ErrChanged", failed)
	}
	// Every 1 MiB piece now reads as the old object's bytes (fetched
	// before the replacement) or fails with cdn.ErrChanged.
	changed := 0
	for off := int64(0); off < res.Size(); off += int64(len(buf)) {
		n, err := res.ReadAt(ctx, buf, off)
		switch {
		case err == nil || errors.Is(err, io.EOF):
			if !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
				t.Fatalf("read at %d: bytes that are not the old object's", off)
			}
		case errors.Is(err, cdn.ErrChanged):
			changed++
		default:
			t.Fatalf("read at %d: %v, want the old bytes or cdn.ErrChanged", off, err)
		}
	}
	if changed == 0 {
		t.Fatal("no read failed with cdn.ErrChanged after the replacement")
	}
	t.Logf("%d of %d MiB fail with cdn.ErrChanged", changed, (res.Size()+1<<20-1)>>20)
}
