package control

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LoaderMetrics count what the loader asks of its backends (the CDN and the
// Resource API) and the errnos its mount returns. The control API serves
// them on GET /metrics beside its own; what a request is, the backends'
// packages say (cdn.Operation, api.Operation), so this file knows no S3.
type LoaderMetrics struct {
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errnos   *prometheus.CounterVec
}

// Failure kinds of a backend request.
const (
	FailTimeout     = "timeout"     // a deadline passed
	FailCanceled    = "canceled"    // the caller gave up
	FailUnreachable = "unreachable" // refused, no route, no such host
	FailNetwork     = "network"     // reset or cut mid-request or mid-body
	FailNotFound    = "not_found"   // a 404: often an answer, not an outage
	FailStatus4xx   = "status_4xx"  // any other 4xx
	FailStatus5xx   = "status_5xx"
)

var failKinds = []string{FailTimeout, FailCanceled, FailUnreachable, FailNetwork, FailNotFound, FailStatus4xx, FailStatus5xx}

// MountErrnos are the errnos the mount returns (fs.Errno); each is a
// series from the start.
var MountErrnos = []syscall.Errno{syscall.EIO, syscall.ENOENT, syscall.EACCES, syscall.EINTR, syscall.EROFS}

// NewLoaderMetrics registers the metrics in reg.
func NewLoaderMetrics(reg prometheus.Registerer) *LoaderMetrics {
	m := &LoaderMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_backend_requests_total",
			Help: "HTTP requests to a backend (cdn, api) by operation, retries each counted.",
		}, []string{"backend", "operation"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_backend_failures_total",
			Help: "Failed backend requests by operation and kind: timeout, canceled, unreachable, network, not_found, status_4xx, status_5xx.",
		}, []string{"backend", "operation", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "azaion_backend_request_duration_seconds",
			Help:    "Time from sending a backend request to its response headers (or its failure).",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"backend", "operation"}),
		errnos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_mount_errors_total",
			Help: "Calls into the mount that failed, by the errno returned.",
		}, []string{"errno"}),
	}
	reg.MustRegister(m.requests, m.failures, m.duration, m.errnos)
	for _, e := range MountErrnos {
		m.errnos.WithLabelValues(errnoName(e))
	}
	return m
}

// Errno counts one failed call into the mount; it is the mount's
// fs.Options.OnErrno.
func (m *LoaderMetrics) Errno(e syscall.Errno) {
	m.errnos.WithLabelValues(errnoName(e)).Inc()
}

var errnoNames = map[syscall.Errno]string{syscall.EIO: "EIO", syscall.ENOENT: "ENOENT",
	syscall.EACCES: "EACCES", syscall.EINTR: "EINTR", syscall.EROFS: "EROFS"}

func errnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "errno_" + strconv.Itoa(int(e))
}

// Transport wraps next so that each request to backend is counted, timed
// and, when it fails, classified. operation names a request, and
// operations lists every name it gives, so that each series exists at zero
// before the first request.
func (m *LoaderMetrics) Transport(backend string, operation func(*http.Request) string, operations []string, next http.RoundTripper) http.RoundTripper {
	for _, op := range operations {
		m.requests.WithLabelValues(backend, op)
		for _, k := range failKinds {
			m.failures.WithLabelValues(backend, op, k)
		}
	}
	return &countingTransport{m: m, backend: backend, op: operation, next: next}
}

type countingTransport struct {
	m       *LoaderMetrics
	backend string
	op      func(*http.Request) string
	next    http.RoundTripper
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := t.op(req)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.m.duration.WithLabelValues(t.backend, op).Observe(time.Since(start).Seconds())
	t.m.requests.WithLabelValues(t.backend, op).Inc()
	switch {
	case err != nil:
		t.fail(op, failKind(err))
		return nil, err
	case resp.StatusCode == http.StatusNotFound:
		t.fail(op, FailNotFound)
	case resp.StatusCode >= 500:
		t.fail(op, FailStatus5xx)
	case resp.StatusCode >= 400:
		t.fail(op, FailStatus4xx)
	default:
		resp.Body = &watchedBody{ReadCloser: resp.Body, fail: func(err error) { t.fail(op, failKind(err)) }}
	}
	return resp, nil
}

func (t *countingTransport) fail(op, kind string) {
	t.m.failures.WithLabelValues(t.backend, op, kind).Inc()
}

// watchedBody counts a body that breaks off (once), not one that its reader
// closes early.
type watchedBody struct {
	io.ReadCloser
	fail   func(error)
	failed bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !b.failed {
		b.failed = true
		b.fail(err)
	}
	return n, err
}

// failKind classifies a transport error.
func failKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FailTimeout
	case errors.Is(err, context.Canceled):
		return FailCanceled
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return FailUnreachable
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return FailUnreachable
	}
	return FailNetwork
}

// BuildInfo names the binary for azaion_loader_build_info.
type BuildInfo struct {
	Version, Commit string
}

// registerLoaderGauges adds azaion_loader_build_info and, with a Store,
// azaion_loader_logged_in, read at scrape time so it is never stale.
func registerLoaderGauges(reg prometheus.Registerer, b BuildInfo, s Store) {
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "azaion_loader_build_info",
		Help:        "Always 1; the labels name the running binary.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": runtime.Version()},
	}, func() float64 { return 1 }))
	if s == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "azaion_loader_logged_in",
		Help: "1 while the loader holds a Resource API session (the /status authenticated field), else 0.",
	}, func() float64 {
		if s.LoggedIn() {
			return 1
		}
		return 0
	}))
}
