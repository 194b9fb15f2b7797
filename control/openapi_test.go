package control

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestOpenAPIDescribesEveryRoute walks the router and checks that every
// route is described in GET /openapi.json, with its method, and that the
// description names no route the router lacks.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := NewHandler(Config{})
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("NewHandler returns %T, not a chi router: walk it another way", h)
	}
	var served []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/openapi.json", nil)
	req.Host = "localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	var described []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			var o struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(op, &o); err != nil || len(o.Responses) == 0 || (o.Responses["200"] == nil && o.Responses["202"] == nil) {
				t.Errorf("%s %s: no 200 or 202 response described", method, path)
			}
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(described)
	if strings.Join(served, "\n") != strings.Join(described, "\n") {
		t.Fatalf("router and openapi.json differ:\nrouter:\n  %s\nopenapi.json:\n  %s",
			strings.Join(served, "\n  "), strings.Join(described, "\n  "))
	}
}
