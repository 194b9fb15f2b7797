package resources_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// TestOpenFetchesFirstChunk: a cold open asks the CDN for the big part's
// first chunk beside the small part and the tail, so that a read at the
// start needs no GET of its own: with the CDN stalled after the open, a
// read in the first chunk still answers with the right bytes, and a read
// further on does not.
func TestOpenFetchesFirstChunk(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	up := bed.LoggedIn(t, testbed.StoreOptions{})
	ctx := context.Background()
	plain := uploadRandom(t, up, folder, "m.bin", 3<<20+123)
	s := bed.LoggedIn(t, testbed.StoreOptions{})
	before := bed.CDNProxy.BytesFromUpstream()
	res, err := s.Open(ctx, folder, "m.bin")
	if err != nil {
		t.Fatal(err)
	}
	// The open returns without waiting for the chunk; wait for its bytes
	// to pass the proxy before the CDN stops answering.
	deadline := time.Now().Add(10 * time.Second)
	for bed.CDNProxy.BytesFromUpstream()-before < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes from the CDN 10 s after the open, want the first chunk (1 MiB)", bed.CDNProxy.BytesFromUpstream()-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Stall})
	defer bed.CDNProxy.Clear()
	for _, off := range []int64{0, 512 << 10} {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got := make([]byte, 4096)
		n, err := res.At(rctx).ReadAt(got, off)
		cancel()
		if err != nil || n != len(got) || !bytes.Equal(got, plain[off:off+4096]) {
			t.Fatalf("read at %d with the CDN stalled: %d bytes, %v, equal %v", off, n, err, bytes.Equal(got, plain[off:off+4096]))
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := res.At(rctx).ReadAt(make([]byte, 4096), 2<<20); err == nil {
		t.Fatal("a read past the first chunk answered with the CDN stalled: the test proves nothing")
	}
}

// TestOpenWarmSkipsFirstChunk: an open of a resource whose first chunk is
// on disk fetches no more than the tail from the CDN.
func TestOpenWarmSkipsFirstChunk(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	up := bed.LoggedIn(t, testbed.StoreOptions{})
	ctx := context.Background()
	plain := uploadRandom(t, up, folder, "m.bin", 2<<20)
	dir := t.TempDir()
	s := bed.LoggedIn(t, testbed.StoreOptions{CacheDir: dir})
	res, err := s.Open(ctx, folder, "m.bin")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4096)
	if _, err := res.At(ctx).ReadAt(got, 0); err != nil || !bytes.Equal(got, plain[:4096]) {
		t.Fatalf("first read: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A fresh Store on the same cache: a first open in its process.
	s2 := bed.LoggedIn(t, testbed.StoreOptions{CacheDir: dir})
	before := bed.CDNProxy.BytesFromUpstream()
	res, err = s2.Open(ctx, folder, "m.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.At(ctx).ReadAt(got, 0); err != nil || !bytes.Equal(got, plain[:4096]) {
		t.Fatalf("read of the cached chunk: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // a GET of the chunk would be on its way
	if n := bed.CDNProxy.BytesFromUpstream() - before; n > 64<<10 {
		t.Fatalf("an open and read of a cached first chunk took %d bytes from the CDN", n)
	}
}
