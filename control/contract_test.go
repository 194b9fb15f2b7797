package control_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/control/unlock"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/testbed"
)

// contract checks answers against the OpenAPI description the control API
// serves, and remembers which described answers it has seen.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	mu     sync.Mutex
	seen   map[string]bool // "METHOD /route status"
}

func loadContract(t *testing.T, url string) *contract {
	t.Helper()
	r := do(t, mustRequest(t, "GET", url+"/openapi.json", nil))
	if r.code != 200 {
		t.Fatalf("GET /openapi.json: %v", r)
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid OpenAPI 3: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: doc, router: router, seen: map[string]bool{}}
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// call sends req, wants the status want, and checks that the answer's
// status, content type and body are what the description says of the
// route.
func (c *contract) call(t *testing.T, what string, want int, req *http.Request) reply {
	t.Helper()
	r := do(t, req)
	if r.code != want {
		t.Errorf("%s: %s %s answered %d %q, want %d", what, req.Method, req.URL.Path, r.code, clipBody(r.body), want)
	}
	// The description's routes are matched on the path alone.
	at, _ := http.NewRequest(req.Method, "http://localhost"+req.URL.RequestURI(), nil)
	route, params, err := c.router.FindRoute(at)
	if err != nil {
		t.Errorf("%s: %s %s is not described: %v", what, req.Method, req.URL.Path, err)
		return r
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: at, PathParams: params, Route: route},
		Status:                 r.code,
		Header:                 r.hdr,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s: %s %s answered %d %s %q, which the description does not allow: %v",
			what, req.Method, route.Path, r.code, r.hdr.Get("Content-Type"), clipBody(r.body), err)
		return r
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %s %d", req.Method, route.Path, r.code)] = true
	c.mu.Unlock()
	return r
}

func clipBody(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// unseen lists the described answers that no call saw.
func (c *contract) unseen() []string {
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				k := fmt.Sprintf("%s %s %s", method, path, code)
				if !c.seen[k] {
					out = append(out, k)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// req builds a request to base+path with a body of this Content-Type (none
// when ct is "") and more headers given as name, value pairs.
func req(t *testing.T, method, base, path, ct, body string, hdr ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := mustRequest(t, method, base+path, rd)
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			r.Host = hdr[i+1]
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

// failingStore is a real Store whose Open and Upload fail, when armed, with
// an error the Store's contract does not classify (a disk that fails).
type failingStore struct {
	*resources.Store
	fail atomic.Bool
}

var errDisk = errors.New("cache: write chunk: input/output error")

func (s *failingStore) Open(ctx context.Context, folder, name string) (*resources.Resource, error) {
	if s.fail.Load() {
		return nil, errDisk
	}
	return s.Store.Open(ctx, folder, name)
}

func (s *failingStore) Upload(ctx context.Context, folder, name string, r io.Reader) (int64, error) {
	if s.fail.Load() {
		io.Copy(io.Discard, r)
		return 0, errDisk
	}
	return s.Store.Upload(ctx, folder, name, r)
}

// contractUnlock is an unlock task over the bed's Resource API whose docker
// CLI is false(1): no image is ever loaded, and a started unlock fails at
// its end, which the contract test does not wait for.
func contractUnlock(t *testing.T, bed *testbed.Bed, archive string) *unlock.Task {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	task := unlock.New(unlock.Config{
		ArchivePath: archive,
		Images:      []string{"azaion-contract/none:1"},
		Docker:      "false",
		NewClient: func() unlock.KeyClient {
			c, err := api.New(bed.APIURL, api.Options{Timeout: 10 * time.Second, Logger: log})
			if err != nil {
				panic(err) // an httptest URL
			}
			return c
		},
		Logger:      log,
		StepTimeout: 10 * time.Second,
		LoadTimeout: time.Minute,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		task.Close(ctx)
	})
	return task
}

// TestOpenAPIContract drives every route of the control API, over real
// HTTP with the reference Resource API and MinIO behind it, into every
// status it answers, and checks each answer (status, Content-Type, body)
// against GET /openapi.json; then that the description lists no answer the
// test did not see. A new status is one line in a table below and one
// response in control/openapi.json.
func TestOpenAPIContract(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	archive := filepath.Join(t.TempDir(), "images.enc")
	fs := &failingStore{Store: bed.Store(t, testbed.StoreOptions{})}
	srv := serveStoreAs(t, fs, control.Config{Unlock: contractUnlock(t, bed, archive), MaxUploadBytes: 64 << 10})
	c := loadContract(t, srv)

	creds := fmt.Sprintf(`{"email":%q,"password":%q}`, bed.Email, bed.Password)
	load := fmt.Sprintf(`{"folder":%q}`, folder)
	prefetch := fmt.Sprintf(`{"folder":%q,"names":["m.bin"]}`, folder)
	big := `{"email":"` + strings.Repeat("a", 70<<10) + `"}`
	const js = "application/json"
	type kase struct {
		what string
		want int
		req  *http.Request
	}
	run := func(cases []kase) {
		t.Helper()
		for _, k := range cases {
			c.call(t, k.what, k.want, k.req)
		}
	}
	every := []struct{ method, path string }{
		{"GET", "/health"}, {"GET", "/status"}, {"GET", "/unlock/status"}, {"GET", "/metrics"}, {"GET", "/openapi.json"},
		{"POST", "/login"}, {"POST", "/load/m.bin"}, {"POST", "/upload/m.bin"}, {"POST", "/unlock"}, {"POST", "/prefetch"},
	}

	// The guard, on every route.
	var cases []kase
	for _, e := range every {
		cases = append(cases, kase{"foreign Host", 403, req(t, e.method, srv, e.path, js, "{}", "Host", "evil.example")})
		if e.method == "POST" {
			cases = append(cases, kase{"cross-site", 403, req(t, e.method, srv, e.path, js, "{}", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")})
		}
	}
	run(cases)

	// Before login.
	upCT, upBody := mpType, multipartBody(folderPart(folder), filePart("m.bin", "small model bytes"))
	run([]kase{
		{"health", 200, req(t, "GET", srv, "/health", "", "")},
		{"status", 200, req(t, "GET", srv, "/status", "", "")},
		{"unlock status", 200, req(t, "GET", srv, "/unlock/status", "", "")},
		{"metrics", 200, req(t, "GET", srv, "/metrics", "", "")},
		{"openapi", 200, req(t, "GET", srv, "/openapi.json", "", "")},
		{"load before login", 401, req(t, "POST", srv, "/load/m.bin", js, load)},
		{"upload before login", 401, req(t, "POST", srv, "/upload/m.bin", upCT, upBody)},
		{"prefetch before login", 401, req(t, "POST", srv, "/prefetch", js, prefetch)},
		{"wrong password", 401, req(t, "POST", srv, "/login", js, fmt.Sprintf(`{"email":%q,"password":"wrong"}`, bed.Email))},
		{"unlock, archive missing", 404, req(t, "POST", srv, "/unlock", js, creds)},
	})
	// Bodies that are not what a route takes.
	for _, p := range []string{"/login", "/load/m.bin", "/unlock", "/prefetch"} {
		run([]kase{
			{"not JSON", 400, req(t, "POST", srv, p, js, "{")},
			{"two JSON values", 400, req(t, "POST", srv, p, js, "{} {}")},
			{"over 64 KiB", 413, req(t, "POST", srv, p, js, big)},
			{"not application/json", 415, req(t, "POST", srv, p, "text/plain", "{}")},
			{"fields missing", 422, req(t, "POST", srv, p, js, "{}")},
		})
	}
	// Bodies that do not all arrive in time: 408, and the connection closed.
	slow := serveStoreAs(t, bed.Store(t, testbed.StoreOptions{}), control.Config{
		Unlock: contractUnlock(t, bed, archive), BodyTimeout: 300 * time.Millisecond,
		UploadMinBytes: 64 << 10, UploadWindow: 300 * time.Millisecond})
	stuck := make(chan struct{})
	defer close(stuck)
	stalled := func(method, path, ct, prefix string) *http.Request {
		r := req(t, method, slow, path, ct, "")
		r.Body = io.NopCloser(io.MultiReader(strings.NewReader(prefix), blockedReader(stuck)))
		r.ContentLength = -1
		return r
	}
	run([]kase{
		{"login body too slow", 408, stalled("POST", "/login", js, `{"email":"a@b.c","pass`)},
		{"load body too slow", 408, stalled("POST", "/load/m.bin", js, `{"folder":"mod`)},
		{"prefetch body too slow", 408, stalled("POST", "/prefetch", js, `{"folder":"mod`)},
		{"unlock body too slow", 408, stalled("POST", "/unlock", js, `{"email":"a@b.c","pass`)},
		{"upload below the minimum rate", 408, stalled("POST", "/upload/m.bin", mpType,
			"--"+boundary+"\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\n"+folder+"\r\n--"+boundary+"\r\n")},
	})
	noFileCT, noFile := mpType, multipartBody(folderPart(folder))
	fileFirstCT, fileFirst := mpType, multipartBody(filePart("m.bin", "x"), folderPart(folder))
	run([]kase{
		{"bad filename", 400, req(t, "POST", srv, "/load/.hidden", js, load)},
		{"bad folder", 400, req(t, "POST", srv, "/load/m.bin", js, `{"folder":"../etc"}`)},
		{"prefetch, bad name", 400, req(t, "POST", srv, "/prefetch", js, `{"resources":["models/../x"]}`)},
		{"upload not multipart", 400, req(t, "POST", srv, "/upload/m.bin", js, "{}")},
		{"upload, file before folder", 400, req(t, "POST", srv, "/upload/m.bin", fileFirstCT, fileFirst)},
		{"upload without a file part", 422, req(t, "POST", srv, "/upload/m.bin", noFileCT, noFile)},
	})

	// Logged in.
	tooBigCT, tooBig := mpType, multipartBody(folderPart(folder), filePart("big.bin", strings.Repeat("x", 65<<10)))
	run([]kase{
		{"login", 200, req(t, "POST", srv, "/login", js, creds)},
		{"upload", 200, req(t, "POST", srv, "/upload/m.bin", upCT, upBody)},
		{"upload over max_upload_bytes", 413, req(t, "POST", srv, "/upload/big.bin", tooBigCT, tooBig)},
		{"load", 200, req(t, "POST", srv, "/load/m.bin", js, load)},
		{"load a missing resource", 404, req(t, "POST", srv, "/load/missing.bin", js, load)},
		{"prefetch", 202, req(t, "POST", srv, "/prefetch", js, prefetch)},
	})
	if err := os.WriteFile(archive, []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	run([]kase{{"unlock", 200, req(t, "POST", srv, "/unlock", js, creds)}})

	// The user bound to another device.
	other := storeWithHardware(t, bed, "CPU: Other CPU. GPU: none. Memory: 2048. DriveSerial: OTHER-1.")
	elsewhere := serveStoreAs(t, other, control.Config{})
	run([]kase{{"login from another device", 409, req(t, "POST", elsewhere, "/login", js, creds)}})
	bed.API.ResetBinding(bed.Email)
	if err := other.Login(ctx(t), bed.Email, bed.Password); err != nil {
		t.Fatalf("login from the other device after a reset: %v", err)
	}
	run([]kase{{"load from the unbound device", 409, req(t, "POST", srv, "/load/m.bin", js, load)}})
	bed.API.ResetBinding(bed.Email)
	run([]kase{{"login again", 200, req(t, "POST", srv, "/login", js, creds)}})

	// Failures behind the Store.
	fs.fail.Store(true)
	run([]kase{
		{"load, the disk fails", 500, req(t, "POST", srv, "/load/m.bin", js, load)},
		{"upload, the disk fails", 500, req(t, "POST", srv, "/upload/m.bin", upCT, upBody)},
	})
	fs.fail.Store(false)
	// A resource another loader uploaded: not in srv's cache.
	another := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	another.loginOK(t)
	another.uploadOK(t, folder, "cold.bin", content(7, 5000))
	bed.CDNProxy.Close()
	run([]kase{
		{"load, CDN down", 502, req(t, "POST", srv, "/load/cold.bin", js, load)},
		{"upload, CDN down", 502, req(t, "POST", srv, "/upload/m2.bin", upCT, upBody)},
	})

	// Without unlock configured.
	bare := serveStoreAs(t, bed.Store(t, testbed.StoreOptions{}), control.Config{})
	run([]kase{{"unlock not configured", 501, req(t, "POST", bare, "/unlock", js, creds)}})

	// With control_token: every route but /health wants it.
	tok := serveStoreAs(t, bed.Store(t, testbed.StoreOptions{}), control.Config{Token: "s3cret-token"})
	cases = nil
	for _, e := range every {
		want := 401
		if e.path == "/health" {
			want = 200
		}
		cases = append(cases, kase{"no token", want, req(t, e.method, tok, e.path, js, "{}")},
			kase{"wrong token", want, req(t, e.method, tok, e.path, js, "{}", "Authorization", "Bearer nope")})
	}
	run(cases)

	if t.Failed() {
		return
	}
	if u := c.unseen(); len(u) > 0 {
		t.Errorf("openapi.json describes answers the test never saw (drive the route into them, or drop them):\n  %s", strings.Join(u, "\n  "))
	}
}

// blockedReader blocks every Read until its channel is closed: a client
// whose body stops arriving.
type blockedReader chan struct{}

func (b blockedReader) Read([]byte) (int, error) {
	<-b
	return 0, io.EOF
}

// serveStoreAs serves s with cfg and returns the server's URL.
func serveStoreAs(t *testing.T, s control.Store, cfg control.Config) string {
	t.Helper()
	cfg.Store = s
	srv := httptest.NewServer(control.NewHandler(cfg))
	t.Cleanup(srv.Close)
	return srv.URL
}
