package api_test

import (
	"net/http"
	"testing"

	"github.com/azaion/loader/resources/api"
)

// TestOperation names the calls of PROTOCOL §2 by their paths, under a base
// URL with a path of its own, and a folder named like a call.
func TestOperation(t *testing.T) {
	for _, c := range []struct{ method, url, want string }{
		{"POST", "http://api.test/login", "login"},
		{"POST", "http://api.test/v1/login", "login"},
		{"POST", "http://api.test/resources/get/models", "resource_get"},
		{"POST", "http://api.test/resources/get/login", "resource_get"},
		{"POST", "http://api.test/resources/models", "resource_put"},
		{"POST", "http://api.test/resources/login", "resource_put"},
		{"GET", "http://api.test/binary-split/key-fragment", "key_fragment"},
		{"GET", "http://api.test/health", "other"},
	} {
		req, _ := http.NewRequest(c.method, c.url, nil)
		if got := api.Operation(req); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.url, got, c.want)
		}
	}
}
