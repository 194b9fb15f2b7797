package control

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics counts the control API's requests by route and status, their
// duration, the requests the guard refused, and the plaintext bytes /load
// streamed. Every label comes from a fixed set (methods, routes, refusal
// reasons; codes are the handlers' own), never from a client's bytes: the
// number of series does not grow with what clients send.
type httpMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	refused   *prometheus.CounterVec
	loadBytes prometheus.Counter
	routes    map[string]bool // the router's patterns
}

// Labels for what is not in the known sets.
const (
	otherLabel     = "other"
	unmatchedRoute = "unmatched" // no route was reached (refused, or 404)
)

// knownMethods are the methods counted under their own name.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

// methodLabel is r's method, or "other".
func methodLabel(method string) string {
	if knownMethods[method] {
		return method
	}
	return otherLabel
}

// Reasons of the guard's refusals (guard.go), the refused metric's labels.
const (
	refusedHost      = "host"
	refusedCrossSite = "cross_site"
	refusedToken     = "token"
)

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_http_requests_total",
			Help: "Control API requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "azaion_http_request_duration_seconds",
			Help:    "Control API request duration by route pattern, body included.",
			Buckets: []float64{.005, .025, .1, .5, 1, 5, 30, 120, 600},
		}, []string{"route"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_http_refused_total",
			Help: "Control API requests refused before any handler: a foreign Host, a cross-site request, a missing or wrong bearer token.",
		}, []string{"reason"}),
		loadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "azaion_load_served_bytes_total",
			Help: "Plaintext bytes sent by POST /load.",
		}),
		routes: map[string]bool{},
	}
	for _, reason := range []string{refusedHost, refusedCrossSite, refusedToken} {
		m.refused.WithLabelValues(reason)
	}
	reg.MustRegister(m.requests, m.duration, m.refused, m.loadBytes)
	return m
}

// knowRoutes records the router's patterns, the only route labels besides
// "unmatched" and "other".
func (m *httpMetrics) knowRoutes(r chi.Routes) {
	chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		m.routes[route] = true
		return nil
	})
}

// routeLabel is the pattern of the route r reached.
func (m *httpMetrics) routeLabel(r *http.Request) string {
	rc := chi.RouteContext(r.Context())
	if rc == nil || rc.RoutePattern() == "" {
		return unmatchedRoute
	}
	if p := rc.RoutePattern(); m.routes[p] {
		return p
	}
	return otherLabel
}

// codeLabel is a status code as a label: the handlers' own codes, and
// "other" for anything outside 100-599.
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return otherLabel
	}
	return strconv.Itoa(code)
}

// count is the middleware that feeds the metrics. It counts in a defer, so
// that a stream cut off half-way (http.ErrAbortHandler) is counted too.
func (m *httpMetrics) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		defer func() {
			route := m.routeLabel(r)
			code := ww.Status()
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(route, methodLabel(r.Method), codeLabel(code)).Inc()
			m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
			if route == "/load/{filename}" && code == http.StatusOK {
				m.loadBytes.Add(float64(ww.BytesWritten()))
			}
		}()
		next.ServeHTTP(ww, r)
	})
}

// metricsHandler serves reg in the Prometheus text format.
func metricsHandler(reg prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
