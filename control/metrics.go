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
// duration, and the plaintext bytes /load streamed.
type httpMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	loadBytes prometheus.Counter
}

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
		loadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "azaion_load_served_bytes_total",
			Help: "Plaintext bytes sent by POST /load.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.loadBytes)
	return m
}

// count is the middleware that feeds the metrics. It counts in a defer, so
// that a stream cut off half-way (http.ErrAbortHandler) is counted too.
func (m *httpMetrics) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		defer func() {
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			code := ww.Status()
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(route, r.Method, strconv.Itoa(code)).Inc()
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
