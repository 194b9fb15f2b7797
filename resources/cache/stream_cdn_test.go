package cache

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/cdn/cdntest"
)

// streamBed puts an 8 MiB big part (one segment) on MinIO and returns it, a Part over a
// fresh cache (1 MiB chunks) that reads it through a fault proxy, the
// proxy, and a client that writes to MinIO directly. The Part's CDN client
// gives up on a GET that sends nothing for rangeTimeout, and makes its
// requests through gate when it is not nil.
func streamBed(t *testing.T, rangeTimeout time.Duration, gate *gated) (resource, *Part, *cdntest.Proxy, *cdn.Client) {
	r, direct, proxy, cfg := putOverProxy(t, 8<<20-11)
	opt := cdn.Options{RangeTimeout: rangeTimeout}
	if gate != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		gate.base = tr
		opt.HTTPClient = &http.Client{Transport: gate}
	}
	viaProxy, err := cdn.New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r, pinnedPart(t, Options{FetchTimeout: 10 * time.Second}, r, viaProxy), proxy, direct
}

// TestStreamOverMinIOResumesAfterCut: a sequential read's one GET, cut
// mid-stream, goes on from where it stopped: exact bytes, one more
// connection, and about the part's bytes from the CDN.
func TestStreamOverMinIOResumesAfterCut(t *testing.T) {
	r, p, proxy, _ := streamBed(t, time.Second, nil)
	proxy.Inject(cdntest.Fault{Mode: cdntest.Cut, After: 5<<20 + 1234, Times: 1})
	p.Warm(context.Background(), 0, 1<<20, 16<<20)
	start := time.Now()
	readAll(t, p, r.big)
	t.Logf("read in %v", time.Since(start))
	if proxy.Conns() < 2 {
		t.Fatal("no second connection: the cut never struck")
	}
	if up := proxy.BytesFromUpstream(); up > int64(len(r.big))+64<<10 {
		t.Fatalf("%d bytes from the CDN for a %d-byte part", up, len(r.big))
	}
	_, total := p.Present()
	waitChunks(t, p, total)
}

// TestStreamOverMinIOReplaced: an object replaced while a stream is cut
// fails the chunks not yet in with cdn.ErrChanged, never with the new
// object's bytes; the chunks in before are the old object's. (MinIO makes
// a PUT wait for the GETs of the object in progress, so the object is
// replaced between the cut and the resume, which waits for it.)
func TestStreamOverMinIOReplaced(t *testing.T) {
	gate := &gated{open: make(chan struct{})}
	r, p, proxy, direct := streamBed(t, 5*time.Second, gate)
	proxy.Inject(cdntest.Fault{Mode: cdntest.Cut, After: 3<<20 + 100, Times: 1})
	p.Warm(context.Background(), 0, 1<<20, 16<<20)
	if got := readAt(t, p, 0, 2<<20); !bytes.Equal(got, r.big[:2<<20]) {
		t.Fatal("chunks before the cut differ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := direct.Put(ctx, "models", "yolo.onnx", bytes.NewReader(random(len(r.big)))); err != nil {
		t.Fatal(err)
	}
	close(gate.open)
	b := make([]byte, 1<<20)
	_, err := p.ReadAt(ctx, b, 6<<20)
	if !errors.Is(err, cdn.ErrChanged) {
		t.Fatalf("read of a chunk after the object was replaced: %v, want cdn.ErrChanged", err)
	}
	if gate.n.Load() < 2 {
		t.Fatal("no resume: the cut never struck")
	}
	waitChunks(t, p, 2)
	got, _ := p.Present()
	if got < 2 || got > 3 {
		t.Fatalf("%d chunks on disk, want those before the cut", got)
	}
	for i := range int64(got) {
		if crc, ok := p.e.present(i); !ok || !p.e.readChunk(i, crc, b) || !bytes.Equal(b, r.big[i<<20:(i+1)<<20]) {
			t.Fatalf("chunk %d on disk is not the old object's", i)
		}
	}
}

// gated lets the first request through and holds the others until open
// is closed.
type gated struct {
	base http.RoundTripper
	n    atomic.Int64
	open chan struct{}
}

func (g *gated) RoundTrip(req *http.Request) (*http.Response, error) {
	if g.n.Add(1) > 1 {
		select {
		case <-g.open:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return g.base.RoundTrip(req)
}
