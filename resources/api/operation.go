package api

import (
	"net/http"
	"strings"
)

// Operations are the values Operation returns, for metrics that want every
// label value present from the start.
var Operations = []string{"login", "resource_get", "resource_put", "key_fragment", "other"}

// Operation names the Resource API call an HTTP request of a Client makes
// (PROTOCOL §2): login, resource_get, resource_put or key_fragment. It reads
// only the method and path, so a transport can label what passes through it.
func Operation(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.Contains(p, "/resources/get/"): // before login: a folder may be named so
		return "resource_get"
	case strings.Contains(p, "/resources/"):
		return "resource_put"
	case strings.HasSuffix(p, "/login"):
		return "login"
	case strings.HasSuffix(p, "/binary-split/key-fragment"):
		return "key_fragment"
	}
	return "other"
}
