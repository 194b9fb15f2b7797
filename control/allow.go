package control

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// routeMethods are the methods a 405's Allow header may name, in the order
// it names them.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// methodNotAllowed answers a request whose path is a route of mux but whose
// method is not with 405 and, as RFC 9110 §15.5.6 requires, an Allow header
// that lists the methods the route serves: HEAD with GET (middleware.GetHead).
func methodNotAllowed(mux *chi.Mux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if r.URL.RawPath != "" {
			path = r.URL.RawPath // as chi routes
		}
		var allow []string
		for _, m := range routeMethods {
			if mux.Match(chi.NewRouteContext(), m, path) ||
				m == http.MethodHead && mux.Match(chi.NewRouteContext(), http.MethodGet, path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method not allowed: this route takes "+strings.Join(allow, ", "))
	}
}
