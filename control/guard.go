package control

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The guard keeps web pages from driving the control API through a user's
// browser, and, with a token configured, everyone without it.
//
//   - DNS rebinding: a page on evil.example whose name is made to resolve
//     to 127.0.0.1 sends its requests with Host: evil.example. Only Hosts
//     that name this machine pass: localhost, a loopback address, the
//     listen address, an IP literal when listening on every interface, and
//     Config.Hosts.
//   - CSRF: a cross-site form or fetch POST carries Sec-Fetch-Site
//     cross-site (or same-site) and an Origin of another host. Requests
//     other than GET and HEAD with either are refused; clients that are
//     not browsers send neither.
//   - Config.Token: every endpoint but /health wants
//     "Authorization: Bearer <token>".

// guard wraps next in the checks above.
func (h *handler) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.hostAllowed(r.Host) {
			h.metrics.refused.WithLabelValues(refusedHost).Inc()
			h.log.Warn("control: refused a request for a foreign Host", "host", logSafe(r.Host, maxLogString), "path", logPath(r), "request_id", requestID(r))
			writeError(w, http.StatusForbidden, "Host not allowed: the control API answers to localhost and its listen address")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && crossSite(r) {
			h.metrics.refused.WithLabelValues(refusedCrossSite).Inc()
			h.log.Warn("control: refused a cross-site request", "origin", logSafe(r.Header.Get("Origin"), maxLogString),
				"sec_fetch_site", logSafe(r.Header.Get("Sec-Fetch-Site"), 32), "path", logPath(r), "request_id", requestID(r))
			writeError(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		if h.token != "" && r.URL.Path != "/health" && !h.tokenOK(r) {
			h.metrics.refused.WithLabelValues(refusedToken).Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="azaion-loader"`)
			writeError(w, http.StatusUnauthorized, "a bearer token is required (control_token)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) tokenOK(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.token)) == 1
}

// hostAllowed reports whether a request's Host names this machine.
func (h *handler) hostAllowed(host string) bool {
	name := host
	if hn, _, err := net.SplitHostPort(host); err == nil {
		name = hn
	}
	name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
	if name == "localhost" {
		return true
	}
	for _, a := range h.hosts {
		if name == strings.ToLower(a) {
			return true
		}
	}
	ip := net.ParseIP(name)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() || h.anyIP {
		return true
	}
	return h.listenIP != nil && ip.Equal(h.listenIP)
}

// crossSite reports whether a browser sent r on behalf of another site.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

// setListen records which Hosts the listen address allows besides
// localhost; a unix socket allows only localhost.
func (h *handler) setListen(listen string) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return
	}
	if host == "" {
		h.anyIP = true
		return
	}
	if ip := net.ParseIP(host); ip != nil {
		h.anyIP = ip.IsUnspecified()
		h.listenIP = ip
		return
	}
	h.hosts = append(h.hosts, host)
}
