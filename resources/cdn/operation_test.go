package cdn_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/azaion/loader/resources/cdn"
)

// opRecorder is a transport that records cdn.Operation of each request.
type opRecorder struct {
	mu   sync.Mutex
	ops  []string
	next http.RoundTripper
}

func (r *opRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.ops = append(r.ops, cdn.Operation(req))
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// take returns the operations recorded since the last take, sorted.
func (r *opRecorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := r.ops
	r.ops = nil
	slices.Sort(ops)
	return strings.Join(ops, " ")
}

// TestOperationNamesEveryCall: each call of a Client against a real MinIO
// makes the requests that cdn.Operation names as the metrics expect, in
// both layouts.
func TestOperationNamesEveryCall(t *testing.T) {
	rec := &opRecorder{next: cdn.NewTransport()}
	for _, l := range layouts(t, cdn.Options{HTTPClient: &http.Client{Transport: rec}, PartSize: 5 << 20}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			rec.take()
			data := random(t, 11<<20) // three parts
			expect := func(what, want string) {
				t.Helper()
				if got := rec.take(); got != want {
					t.Errorf("%s: requests %q, want %q", what, got, want)
				}
			}
			small, err := l.client.Put(c, l.folder, "small", bytes.NewReader(data[:1000]))
			if err != nil {
				t.Fatal(err)
			}
			expect("small put", "put")
			if _, err := l.client.Put(c, l.folder, "big", bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			expect("multipart put", "multipart_complete multipart_start put_part put_part put_part")
			if _, err := l.client.Put(c, l.folder, "broken", &failingReader{n: 6 << 20}); !errors.Is(err, errSource) {
				t.Fatalf("put of a failing source: %v", err)
			}
			// Whether the first part went up before the source failed is a race.
			if got := strings.ReplaceAll(rec.take(), " put_part", ""); got != "multipart_abort multipart_start" {
				t.Errorf("multipart put whose source fails: requests %q, want a start, parts and an abort", got)
			}
			if _, err := l.client.Stat(c, l.folder, "small"); err != nil {
				t.Fatal(err)
			}
			expect("stat", "stat")
			p := make([]byte, 100)
			if _, err := l.client.ReadAt(c, l.folder, "small", small.ETag, p, 10); err != nil {
				t.Fatal(err)
			}
			expect("read", "get")
			if _, _, err := l.client.Head(c, l.folder, "small", p); err != nil {
				t.Fatal(err)
			}
			expect("head", "head")
			if _, _, err := l.client.Tail(c, l.folder, "small", p); err != nil {
				t.Fatal(err)
			}
			expect("tail", "tail")
			rr, err := l.client.Stream(c, l.folder, "small", small.ETag, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rr); err != nil {
				t.Fatal(err)
			}
			rr.Close()
			expect("stream", "get")
			if _, err := l.client.List(c, l.folder); err != nil {
				t.Fatal(err)
			}
			expect("list", "list")
		})
	}
}
