package control_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http/httpguts"

	"github.com/azaion/loader/control"
)

// discardStore logs anyone in, reads every upload whole and keeps nothing,
// so that what the fuzzer finds retained is the handler's.
type discardStore struct{ stubStore }

func (*discardStore) Upload(ctx context.Context, folder, name string, r io.Reader) (int64, error) {
	return io.Copy(io.Discard, r)
}

// lineSink is a log sink that remembers its longest line.
type lineSink struct {
	mu      sync.Mutex
	longest int
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.longest = max(s.longest, len(p))
	s.mu.Unlock()
	return len(p), nil
}

// fuzzToken is the control token of FuzzRequests' handler.
const fuzzToken = "fuzz-token"

// Body kinds of FuzzRequests.
const (
	fuzzRaw       = iota // body as given, Content-Type from the header input
	fuzzJSON             // {"email","password","folder","filename"} with body as every value
	fuzzMultipart        // folder field = header value, then a file part = body
	fuzzFileFirst        // a file part, then the folder field
	fuzzKinds
)

// FuzzRequests sends requests built from fuzz bytes (method, path, one
// header, body as raw bytes, JSON or multipart) through the control API's
// whole handler stack, and checks that it never panics (a 500), answers
// only the documented codes, keeps log lines short, and keeps its metrics
// to the fixed label sets whatever the input's size: the number of series
// has a bound that no input moves.
func FuzzRequests(f *testing.F) {
	huge := strings.Repeat("M", 50<<10)
	for _, s := range []struct {
		method, path, hdrName, hdrValue string
		body                            string
		kind                            uint8
		auth                            bool
	}{
		{"GET", "/health", "", "", "", fuzzRaw, false},
		{"GET", "/status", "X-Request-Id", strings.Repeat("r", 2<<10), "", fuzzRaw, true},
		{huge, "/status", "", "", "", fuzzRaw, true},
		{huge, "/login", "Host", "evil.example", "", fuzzRaw, true},
		{"POST", "/login", "Origin", "http://evil.example/" + huge, `{"email":"a@b.c","password":"p"}`, fuzzRaw, true},
		{"GET", "/" + huge, "", "", "", fuzzRaw, true},
		{"GET", "/load/%ff%00" + huge, "", "", "", fuzzRaw, true},
		{"POST", "/login", "Content-Type", "application/json", `{"email":"a@b.c","pass`, fuzzRaw, true},
		{"POST", "/login", "Content-Type", "text/plain", `{"email":"a@b.c","password":"p"}`, fuzzRaw, true},
		{"POST", "/login", "", "", huge, fuzzJSON, true},
		{"POST", "/login", "", "", "", fuzzJSON, false},
		{"POST", "/load/m.bin", "", "", "models", fuzzJSON, true},
		{"POST", "/load/..", "", "", "..", fuzzJSON, true},
		{"POST", "/load/m.bin", "Content-Type", "application/json", `{"folder":"models"} {}`, fuzzRaw, true},
		{"POST", "/unlock", "", "", "x", fuzzJSON, true},
		{"POST", "/prefetch", "", "", "models", fuzzJSON, true},
		{"POST", "/prefetch", "Content-Type", "application/json", `{"folder":"models","names":["m.bin","a/b"],"resources":["models/x"]}`, fuzzRaw, true},
		{"POST", "/prefetch", "Content-Type", "application/json", `{"resources":["models/m.bin","models/n.bin"]}`, fuzzRaw, true},
		{"POST", "/upload/m.bin", "", "models", "model bytes", fuzzMultipart, true},
		{"POST", "/upload/m.bin", "", strings.Repeat("f", 300), "model bytes", fuzzMultipart, true},
		{"POST", "/upload/m.bin", "", "models", "model bytes", fuzzFileFirst, true},
		{"POST", "/upload/m.bin", "Content-Type", "multipart/form-data; boundary=XX", "--XX\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\nmodels\r\n--XX\r\n", fuzzRaw, true},
		{"POST", "/upload/m.bin", "Content-Type", "multipart/form-data; boundary=XX", "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../x\"\r\n\r\nx\r\n--XX--\r\n", fuzzRaw, true},
		{"POST", "/upload/m.bin", "Content-Type", "multipart/form-data", "x", fuzzRaw, true},
		{"GET", "/metrics", "", "", "", fuzzRaw, true},
		{"GET", "/unlock/status", "Sec-Fetch-Site", "cross-site", "", fuzzRaw, true},
		{"DELETE", "/status", "Authorization", "Bearer wrong", "", fuzzRaw, false},
		{"BREW", "/openapi.json", "", "", "", fuzzRaw, true},
		{"GET", "/status", "X-Request-Id", "\xff\xfe\\\"", "", fuzzRaw, true},
		{"POST", "/login", "", "", "\xff\x00\u2028", fuzzJSON, true},
	} {
		f.Add(s.method, s.path, s.hdrName, s.hdrValue, []byte(s.body), s.kind, s.auth)
	}

	logs := &lineSink{}
	reg := prometheus.NewRegistry()
	h := control.NewHandler(control.Config{
		Store: &discardStore{}, Token: fuzzToken, Registry: reg, MaxUploadBytes: 1 << 20,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	// Every label value the handler may use, and so a bound on the series.
	routes := map[string]bool{"unmatched": true, "other": true, "/health": true, "/status": true, "/login": true,
		"/load/{filename}": true, "/upload/{filename}": true, "/unlock": true, "/unlock/status": true,
		"/prefetch": true, "/metrics": true, "/openapi.json": true}
	methods := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
		"OPTIONS": true, "CONNECT": true, "TRACE": true, "other": true}
	documented := map[int]bool{200: true, 202: true, 400: true, 401: true, 403: true, 404: true, 405: true, 408: true,
		413: true, 415: true, 422: true, 501: true}
	reasons := map[string]bool{"host": true, "cross_site": true, "token": true}
	states := map[string]bool{"queued": true, "running": true, "done": true, "error": true}
	// requests and duration: route × method × code, route; refused: reasons;
	// plus the load byte counter; prefetch: states, and its byte counter.
	maxSeries := len(routes)*len(methods)*len(documented) + len(routes) + len(reasons) + 1 + len(states) + 1

	f.Fuzz(func(t *testing.T, method, path, hdrName, hdrValue string, body []byte, kind uint8, auth bool) {
		if method == "" {
			method = "GET"
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			u = &url.URL{Path: "/" + strings.TrimPrefix(path, "/")}
		}
		req := &http.Request{
			Method: method, URL: u, RequestURI: u.RequestURI(), Host: "localhost",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, RemoteAddr: "127.0.0.1:40000",
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+fuzzToken)
		}
		ctype := ""
		switch kind % fuzzKinds {
		case fuzzJSON:
			v := strconv.Quote(string(body))
			body = []byte(`{"email":` + v + `,"password":` + v + `,"folder":` + v + `,"filename":` + v + `}`)
			ctype = "application/json"
		case fuzzMultipart, fuzzFileFirst:
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			if kind%fuzzKinds == fuzzMultipart {
				mw.WriteField("folder", hdrValue)
			}
			fw, _ := mw.CreateFormFile("file", "m.bin")
			fw.Write(body)
			if kind%fuzzKinds == fuzzFileFirst {
				mw.WriteField("folder", hdrValue)
			}
			mw.Close()
			body, ctype = b.Bytes(), mw.FormDataContentType()
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if httpguts.ValidHeaderFieldName(hdrName) && httpguts.ValidHeaderFieldValue(hdrValue) {
			if http.CanonicalHeaderKey(hdrName) == "Host" {
				req.Host = hdrValue
			} else {
				req.Header.Set(hdrName, hdrValue)
			}
		}
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		if len(body) == 0 {
			req.Body = http.NoBody
		}
		req = req.WithContext(context.Background())

		logs.mu.Lock()
		logs.longest = 0
		logs.mu.Unlock()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if !documented[w.Code] {
			t.Fatalf("%.40q %.60q: %d %.300s", method, path, w.Code, w.Body.String())
		}

		logs.mu.Lock()
		longest := logs.longest
		logs.mu.Unlock()
		if longest > 2048 {
			t.Fatalf("a log line of %d bytes", longest)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := 0
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				series++
				for _, lp := range m.GetLabel() {
					v := lp.GetValue()
					ok := false
					switch lp.GetName() {
					case "route":
						ok = routes[v]
					case "method":
						ok = methods[v]
					case "code":
						c, err := strconv.Atoi(v)
						ok = err == nil && documented[c]
					case "reason":
						ok = reasons[v]
					case "state":
						ok = states[v]
					case "version", "commit", "goversion":
						// The binary's own, set at build time.
						ok = mf.GetName() == "azaion_loader_build_info"
					}
					if !ok {
						t.Fatalf("%s has label %s=%.100q, outside its fixed set", mf.GetName(), lp.GetName(), v)
					}
				}
			}
		}
		if series > maxSeries {
			t.Fatalf("%d series, over the bound of %d", series, maxSeries)
		}
	})
}
