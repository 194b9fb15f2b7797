package control_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/cache"
	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/testbed"
)

// loader is a control API over a Store of a testbed, served by httptest.
type loader struct {
	bed    *testbed.Bed
	store  *resources.Store
	srv    *httptest.Server
	url    string
	folder string
}

// newLoader serves a fresh, not logged in Store of bed.
func newLoader(t *testing.T, bed *testbed.Bed, so testbed.StoreOptions, cfg control.Config) *loader {
	t.Helper()
	return serveStore(t, bed, bed.Store(t, so), cfg)
}

func serveStore(t *testing.T, bed *testbed.Bed, s *resources.Store, cfg control.Config) *loader {
	t.Helper()
	cfg.Store = s
	srv := httptest.NewServer(control.NewHandler(cfg))
	t.Cleanup(srv.Close)
	return &loader{bed: bed, store: s, srv: srv, url: srv.URL}
}

// storeWithHardware is a Store of bed like bed.Store, but on another device.
func storeWithHardware(t *testing.T, bed *testbed.Bed, hardware string) *resources.Store {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	c, err := cache.Open(filepath.Join(t.TempDir(), "cache"), cache.Options{Logger: log, FetchTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	client, err := api.New(bed.APIURL, api.Options{Timeout: 10 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s := resources.NewStore(resources.StoreConfig{
		API: client, Cache: c, ResourceKey: resources.Secret(bed.ResourceKey), Hardware: hardware,
		CDN: cdn.Options{RangeTimeout: 10 * time.Second}, Logger: log,
	})
	t.Cleanup(func() { s.Close() })
	return s
}

var client = &http.Client{Timeout: 5 * time.Minute}

// reply is an answer with its body read.
type reply struct {
	code int
	body []byte
	hdr  http.Header
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.body)) }

// detail is the "detail" of a JSON error body, or "" when the body is not one.
func (r reply) detail() string {
	var v struct{ Detail string }
	if r.hdr.Get("Content-Type") != "application/json" || json.Unmarshal(r.body, &v) != nil {
		return ""
	}
	return v.Detail
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return reply{resp.StatusCode, body, resp.Header}
}

func (l *loader) get(t *testing.T, path string) reply {
	t.Helper()
	req, _ := http.NewRequest("GET", l.url+path, nil)
	return do(t, req)
}

func (l *loader) postJSON(t *testing.T, path, body string) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", l.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

func (l *loader) login(t *testing.T, email, password string) reply {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return l.postJSON(t, "/login", string(b))
}

// loginOK logs in as the bed's user and fails t unless it works.
func (l *loader) loginOK(t *testing.T) {
	t.Helper()
	if r := l.login(t, l.bed.Email, l.bed.Password); r.code != 200 || string(r.body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("login: %v, want 200 {\"status\":\"ok\"}", r)
	}
}

// upload sends content as /upload/{name} in folder, streamed: the body is
// never held whole.
func (l *loader) upload(t *testing.T, folder, name string, content io.Reader) reply {
	t.Helper()
	return do(t, uploadRequest(l.url, folder, name, content))
}

// uploadRequest is a POST of content to url's /upload/{name} in folder,
// its multipart body streamed from content as the request is sent.
func uploadRequest(url, folder, name string, content io.Reader) *http.Request {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("folder", folder)
		if err == nil {
			var fw io.Writer
			if fw, err = mw.CreateFormFile("file", name); err == nil {
				if _, err = io.CopyBuffer(fw, content, make([]byte, 1<<20)); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest("POST", url+"/upload/"+name, pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

// uploadOK uploads content and fails t unless it answers 200 {"status":"ok"}.
func (l *loader) uploadOK(t *testing.T, folder, name string, content io.Reader) {
	t.Helper()
	if r := l.upload(t, folder, name, content); r.code != 200 || string(r.body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("upload %s/%s: %v", folder, name, r)
	}
}

// loaded is a /load answer whose body was hashed as it streamed in.
type loaded struct {
	code    int
	length  int64 // Content-Length
	n       int64 // bytes read
	sum     [32]byte
	readErr error
	body    []byte // the body when it is not a 200
	hdr     http.Header
}

// load asks for folder/name and hashes the body on the fly.
func (l *loader) load(t *testing.T, folder, name string) loaded {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"filename": name, "folder": folder})
	req, _ := http.NewRequest("POST", l.url+"/load/"+name, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("load %s/%s: %v", folder, name, err)
	}
	defer resp.Body.Close()
	out := loaded{code: resp.StatusCode, length: resp.ContentLength, hdr: resp.Header}
	if resp.StatusCode != 200 {
		out.body, _ = io.ReadAll(resp.Body)
		return out
	}
	h := sha256.New()
	out.n, out.readErr = io.Copy(h, resp.Body)
	copy(out.sum[:], h.Sum(nil))
	return out
}

// loadOK loads folder/name and fails t unless it is exactly want bytes
// with this SHA-256.
func (l *loader) loadOK(t *testing.T, folder, name string, size int64, sum [32]byte) {
	t.Helper()
	got := l.load(t, folder, name)
	switch {
	case got.code != 200:
		t.Fatalf("load %s/%s: %d %s", folder, name, got.code, got.body)
	case got.readErr != nil:
		t.Fatalf("load %s/%s: body broke off after %d bytes: %v", folder, name, got.n, got.readErr)
	case got.length != size || got.n != size:
		t.Fatalf("load %s/%s: Content-Length %d, %d bytes read; want %d", folder, name, got.length, got.n, size)
	case got.sum != sum:
		t.Fatalf("load %s/%s: SHA-256 differs from what was uploaded", folder, name)
	case got.hdr.Get("Content-Type") != "application/octet-stream":
		t.Fatalf("load %s/%s: Content-Type %q", folder, name, got.hdr.Get("Content-Type"))
	}
}

// content is size bytes from a PRNG seeded with seed: the same bytes on
// every call, never held whole. One MiB comes from ChaCha8; each further
// MiB is that block rotated by its index, so that no two MiB are alike and
// a large resource costs little CPU under the race detector.
func content(seed uint64, size int64) io.Reader {
	block := make([]byte, min(size, 1<<20))
	rand.NewChaCha8(seedBytes(seed)).Read(block)
	return io.LimitReader(&rotations{block: block}, size)
}

type rotations struct {
	block []byte
	off   int64
}

func (r *rotations) Read(p []byte) (int, error) {
	n := int64(len(r.block))
	if n == 0 {
		return 0, io.EOF
	}
	i, at := r.off/n, r.off%n
	rot := (at + i*7919) % n // block i starts at offset i*7919 of the base block
	m := copy(p[:min(int64(len(p)), n-at)], r.block[rot:])
	if int64(m) < n-at && m < len(p) {
		m += copy(p[m:min(int64(len(p)), n-at)], r.block)
	}
	r.off += int64(m)
	return m, nil
}

func seedBytes(seed uint64) (s [32]byte) {
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// sumOf is the SHA-256 of content(seed, size).
func sumOf(seed uint64, size int64) [32]byte {
	h := sha256.New()
	io.Copy(h, content(seed, size))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// ctx is a bounded context for direct Store and S3 calls.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
