package cdn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/cdn/cdntest"
)

// TestStreamReadsTheRange: a stream gives exactly the range, across reads
// of any size, ends with io.EOF, and moves no more than the range.
func TestStreamReadsTheRange(t *testing.T) {
	cl, proxy, etag, data := viaProxy(t)
	r, err := cl.Stream(ctx(t), "f", "m", etag, 1000, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data[1000:1000+2<<20]) {
		t.Fatalf("stream: %d bytes, %v", len(got), err)
	}
	if up := proxy.BytesFromUpstream(); up > 2<<20+8192 {
		t.Fatalf("%d bytes from upstream for a %d-byte range", up, 2<<20)
	}
	// A range past the object's end ends at the end.
	r2, err := cl.Stream(ctx(t), "f", "m", etag, 3<<20-10, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if got, err := io.ReadAll(r2); err != nil || !bytes.Equal(got, data[3<<20-10:]) {
		t.Fatalf("stream past the end: %d bytes, %v", len(got), err)
	}
}

// TestStreamResumesAfterFault: a stream cut, reset or stalled mid-body
// goes on from where it stopped, with exact bytes.
func TestStreamResumesAfterFault(t *testing.T) {
	for _, mode := range []struct {
		name string
		m    cdntest.FaultMode
	}{{"cut", cdntest.Cut}, {"reset", cdntest.Reset}, {"stall", cdntest.Stall}} {
		t.Run(mode.name, func(t *testing.T) {
			cl, proxy, etag, data := viaProxy(t)
			proxy.Inject(cdntest.Fault{Mode: mode.m, After: 700 << 10, Times: 1})
			r, err := cl.Stream(ctx(t), "f", "m", etag, 0, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stream: %d bytes, %v, equal %v", len(got), err, bytes.Equal(got, data))
			}
			if proxy.Conns() < 2 {
				t.Fatalf("no second connection: the fault never struck")
			}
			if up := proxy.BytesFromUpstream(); up > int64(len(data))+(800<<10) {
				t.Fatalf("%d bytes from upstream for a %d-byte stream", up, len(data))
			}
		})
	}
}

// TestStreamOfReplacedObject: when the object is replaced while a stream
// is cut, the resume is refused (ErrChanged), and every byte given before
// is the old object's.
func TestStreamOfReplacedObject(t *testing.T) {
	cl, proxy, etag, data := viaProxy(t)
	proxy.Inject(cdntest.Fault{Mode: cdntest.Stall, After: 1 << 20, Times: 1})
	r, err := cl.Stream(ctx(t), "f", "m", etag, 0, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 512<<10)
	if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, data[:len(head)]) {
		t.Fatalf("first bytes: %v", err)
	}
	// The stream is stalled at 1 MiB by now; the object changes under it.
	direct, err := cdn.New(cdntest.Shared(t).Config(cl.Config().Bucket), cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Put(ctx(t), "f", "m", bytes.NewReader(random(t, len(data)))); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if !errors.Is(err, cdn.ErrChanged) {
		t.Fatalf("stream of a replaced object: %v after %d more bytes, want cdn.ErrChanged", err, len(rest))
	}
	if !bytes.Equal(rest, data[len(head):len(head)+len(rest)]) {
		t.Fatalf("the %d bytes after the first are not the old object's", len(rest))
	}
}

// TestStreamStallIsBounded: a stream whose every connection stalls gives
// up after its resumes, each bounded by the RangeTimeout, and a stream
// whose context ends returns at once with its error.
func TestStreamStallIsBounded(t *testing.T) {
	cl, proxy, etag, data := viaProxy(t) // RangeTimeout 1s
	proxy.Inject(cdntest.Fault{Mode: cdntest.Stall, After: 100 << 10})
	r, err := cl.Stream(ctx(t), "f", "m", etag, 0, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := io.ReadAll(r)
	r.Close()
	if err == nil || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("stream through a proxy that always stalls: %d bytes, %v", len(got), err)
	}
	if took := time.Since(start); took > 12*time.Second {
		t.Fatalf("gave up after %v", took)
	}
	t.Logf("%d bytes, then after %v: %v", len(got), time.Since(start), err)

	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cl2, err := cdn.New(cl.Config(), cdn.Options{RangeTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := cl2.Stream(c, "f", "m", etag, 0, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	start = time.Now()
	if _, err := io.ReadAll(r2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled stream: %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stalled stream returned after %v", took)
	}
}
