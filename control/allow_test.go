package control_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/azaion/loader/control"
)

// TestMethodNotAllowedSaysAllow: every route asked with a method it does not
// take answers 405 with an Allow header naming exactly the methods it takes
// (RFC 9110 §15.5.6), and a JSON detail. A GET route answers HEAD as GET
// without the body.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	srv, _ := guarded(t, control.Config{})
	routes := map[string]string{
		"/health": "GET, HEAD", "/status": "GET, HEAD", "/unlock/status": "GET, HEAD", "/metrics": "GET, HEAD", "/openapi.json": "GET, HEAD",
		"/login": "POST", "/load/m.bin": "POST", "/load/a%2Fb": "POST", "/upload/m.bin": "POST", "/unlock": "POST", "/prefetch": "POST",
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	for path, allow := range routes {
		if allow == "GET, HEAD" {
			req, _ := http.NewRequest("HEAD", srv.URL+path, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") == "" {
				t.Errorf("HEAD %s: %d %q, want 200 with the GET's Content-Type", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
		for _, m := range methods {
			if strings.Contains(allow, m) {
				continue
			}
			req, _ := http.NewRequest(m, srv.URL+path, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var v struct{ Detail string }
			switch {
			case resp.StatusCode != 405:
				t.Errorf("%s %s: %d, want 405", m, path, resp.StatusCode)
			case len(resp.Header.Values("Allow")) != 1 || resp.Header.Get("Allow") != allow:
				t.Errorf("%s %s: Allow %q, want exactly %q", m, path, resp.Header.Values("Allow"), allow)
			case m == "HEAD":
			case resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &v) != nil || v.Detail == "":
				t.Errorf("%s %s: body %q, want a JSON detail", m, path, body)
			}
		}
	}
}
