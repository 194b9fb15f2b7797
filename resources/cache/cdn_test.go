package cache

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/cdn/cdntest"
)

func TestMain(m *testing.M) { cdntest.Main(m) }

// putOverProxy puts a big part of size bytes as models/yolo.onnx in a new
// bucket of the shared MinIO, and returns it with its ETag, a client that
// writes to MinIO directly, a fault proxy in front of MinIO, and the
// config of a client that goes through the proxy.
func putOverProxy(t *testing.T, size int) (resource, *cdn.Client, *cdntest.Proxy, cdn.Config) {
	t.Helper()
	mc := cdntest.Shared(t)
	bucket := mc.NewBucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct, err := cdn.New(mc.Config(bucket), cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newResource(size)
	obj, err := direct.Put(ctx, "models", "yolo.onnx", bytes.NewReader(r.big))
	if err != nil {
		t.Fatal(err)
	}
	r.v.ETag = obj.ETag
	proxy := cdntest.NewProxy(t, mc.Endpoint)
	cfg := mc.Config(bucket)
	cfg.Host = proxy.URL()
	return r, direct, proxy, cfg
}

// TestOverMinIO reads a big part through the cache from a real S3 server,
// counting what crosses the wire.
func TestOverMinIO(t *testing.T) {
	r, direct, proxy, cfg := putOverProxy(t, 3<<20+123)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	viaProxy, err := cdn.New(cfg, cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pinnedPart(t, Options{}, r, viaProxy) // 1 MiB chunks
	b := make([]byte, 100)
	if n, err := p.ReadAt(ctx, b, 2<<20+500); err != nil || n != 100 || !bytes.Equal(b, r.big[2<<20+500:2<<20+600]) {
		t.Fatalf("read: %d, %v", n, err)
	}
	waitChunks(t, p, 1) // the read may return before the rest of its chunk is in
	if up := proxy.BytesFromUpstream(); up < 1<<20 || up > 1<<20+8192 {
		t.Fatalf("%d bytes from the CDN for one 1 MiB chunk", up)
	}
	readAll(t, p, r.big)
	cold := proxy.BytesFromUpstream()
	if cold > int64(len(r.big))+32<<10 {
		t.Fatalf("%d bytes from the CDN for a %d-byte part", cold, len(r.big))
	}
	readAll(t, p, r.big)
	if warm := proxy.BytesFromUpstream() - cold; warm != 0 {
		t.Fatalf("warm read took %d bytes from the CDN", warm)
	}

	// The object is replaced: a cold cache pinned to the old ETag says so.
	if _, err := direct.Put(ctx, "models", "yolo.onnx", bytes.NewReader(random(1000))); err != nil {
		t.Fatal(err)
	}
	stale := pinnedPart(t, Options{}, r, direct)
	if _, err := stale.ReadAt(ctx, b, 0); !errors.Is(err, cdn.ErrChanged) {
		t.Fatalf("read of a replaced object: %v, want cdn.ErrChanged", err)
	}
}

// pinnedPart is r's Part in a fresh cache with options opt, read from the
// CDN through client, pinned to r's ETag.
func pinnedPart(t *testing.T, opt Options, r resource, client *cdn.Client) *Part {
	t.Helper()
	c, err := Open(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p, err := c.Part("models", "yolo.onnx", r.v, r.key, client.Pin("models", "yolo.onnx", r.v.ETag))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
