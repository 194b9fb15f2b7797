package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/control/unlock"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/cache"
)

// metrics is the loader's Prometheus registry, served by the control API on
// GET /metrics. Most values are read at scrape time from counters the parts
// already keep (the cache's Stats, the unlock task's Status); the rest are
// counted here, at the edges: mount reads (fs.Options.OnRead), logins, and
// the Resource API client's HTTP transport. The control API adds its own
// (requests, bytes served by /load).
type metrics struct {
	reg *prometheus.Registry

	logins       *prometheus.CounterVec
	mountBytes   prometheus.Counter
	mountLatency prometheus.Histogram
	mountErrors  *prometheus.CounterVec
	apiBytes     prometheus.Counter
	apiErrors    *prometheus.CounterVec
	// loader counts backend requests and mount errnos (control.LoaderMetrics).
	loader *control.LoaderMetrics
}

func newMetrics(c *cache.Cache) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_logins_total", Help: "Logins to the Resource API (at start and POST /login) by result.",
		}, []string{"result"}),
		mountBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "azaion_mount_served_bytes_total", Help: "Plaintext bytes returned by reads of the mount.",
		}),
		mountLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "azaion_mount_read_duration_seconds",
			Help:    "Duration of one FUSE read of the mount, fetch and decrypt included.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}),
		mountErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_mount_read_errors_total", Help: "Failed reads of the mount by cause.",
		}, []string{"cause"}),
		apiBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "azaion_api_fetched_bytes_total", Help: "Response body bytes read from the Resource API.",
		}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "azaion_api_errors_total", Help: "Failed Resource API calls by cause (timeout, network, http_<code>).",
		}, []string{"cause"}),
	}
	m.reg.MustRegister(m.logins, m.mountBytes, m.mountLatency, m.mountErrors, m.apiBytes, m.apiErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&cacheCollector{c: c})
	m.loader = control.NewLoaderMetrics(m.reg)
	// The series alerts look for exist at zero before the first login.
	m.logins.WithLabelValues("failure")
	m.logins.WithLabelValues("success")
	return m
}

func (m *metrics) login(err error) {
	if err != nil {
		m.logins.WithLabelValues("failure").Inc()
		return
	}
	m.logins.WithLabelValues("success").Inc()
}

// mountRead is the mount's fs.Options.OnRead.
func (m *metrics) mountRead(n int, d time.Duration, err error) {
	m.mountLatency.Observe(d.Seconds())
	if err != nil {
		m.mountErrors.WithLabelValues(cause(err)).Inc()
		return
	}
	m.mountBytes.Add(float64(n))
}

// cause names an error's class for a label: few values, no text.
func cause(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, resources.ErrNotLoggedIn):
		return "not_logged_in"
	case errors.Is(err, resources.ErrNotFound):
		return "not_found"
	case errors.Is(err, resources.ErrDecrypt):
		return "decrypt"
	case errors.Is(err, resources.ErrUnauthorized), errors.Is(err, resources.ErrForbidden):
		return "unauthorized"
	case errors.Is(err, resources.ErrHardwareMismatch):
		return "hardware_mismatch"
	case errors.Is(err, resources.ErrUpstream):
		return "upstream"
	}
	return "other"
}

// apiTransport counts the Resource API's response bytes and failures.
func (m *metrics) apiTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			m.apiErrors.WithLabelValues(cause(err)).Inc()
			return nil, err
		}
		if resp.StatusCode >= 400 {
			m.apiErrors.WithLabelValues("http_" + strconv.Itoa(resp.StatusCode)).Inc()
		}
		resp.Body = &countingBody{ReadCloser: resp.Body, add: m.apiBytes.Add}
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type countingBody struct {
	io.ReadCloser
	add func(float64)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.add(float64(n))
	return n, err
}

// countLogins wraps the Store the control API logs in with, counting, and
// calling after (when not nil) once a login succeeds.
func countLogins(s *resources.Store, m *metrics, after func()) control.Store {
	return loginCounter{Store: s, m: m, after: after}
}

type loginCounter struct {
	*resources.Store
	m     *metrics
	after func()
}

func (l loginCounter) Login(ctx context.Context, email, password string) error {
	err := l.Store.Login(ctx, email, password)
	l.m.login(err)
	if err == nil && l.after != nil {
		l.after()
	}
	return err
}

// cacheCollector reads the cache's counters and size at scrape time.
type cacheCollector struct{ c *cache.Cache }

var (
	cacheReadDesc = prometheus.NewDesc("azaion_cache_read_bytes_total",
		"Big-part bytes read through the cache, by source: disk (hits) or cdn (misses, fetched from the CDN).",
		[]string{"source"}, nil)
	cacheSizeDesc = prometheus.NewDesc("azaion_cache_size_bytes",
		"Chunk bytes the cache holds on disk (bounded by cache_max_bytes).", nil, nil)
	cacheEvictionsDesc = prometheus.NewDesc("azaion_cache_evictions_total",
		"Cache entries removed to stay within cache_max_bytes.", nil, nil)
)

func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheReadDesc
	ch <- cacheSizeDesc
	ch <- cacheEvictionsDesc
}

func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	ch <- prometheus.MustNewConstMetric(cacheReadDesc, prometheus.CounterValue, float64(st.DiskBytes), "disk")
	ch <- prometheus.MustNewConstMetric(cacheReadDesc, prometheus.CounterValue, float64(st.OriginBytes), "cdn")
	ch <- prometheus.MustNewConstMetric(cacheEvictionsDesc, prometheus.CounterValue, float64(st.Evictions))
	ch <- prometheus.MustNewConstMetric(cacheSizeDesc, prometheus.GaugeValue, float64(cc.c.Size()))
}

// unlockCollector reads the unlock task's state and progress.
type unlockCollector struct{ t *unlock.Task }

var (
	unlockStateDesc = prometheus.NewDesc("azaion_unlock_state",
		"1 for the unlock task's current state, 0 for the others.", []string{"state"}, nil)
	unlockBytesDesc = prometheus.NewDesc("azaion_unlock_decrypted_bytes",
		"Image archive bytes decrypted by the running or last unlock.", nil, nil)
	unlockTotalDesc = prometheus.NewDesc("azaion_unlock_archive_bytes",
		"Size of the image archive of the running or last unlock.", nil, nil)
)

func (uc *unlockCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- unlockStateDesc
	ch <- unlockBytesDesc
	ch <- unlockTotalDesc
}

func (uc *unlockCollector) Collect(ch chan<- prometheus.Metric) {
	st := uc.t.Status()
	for _, s := range []unlock.State{unlock.StateIdle, unlock.StateAuthenticating, unlock.StateDownloadingKey,
		unlock.StateDecrypting, unlock.StateLoadingImages, unlock.StateReady, unlock.StateError} {
		v := 0.0
		if s == st.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(unlockStateDesc, prometheus.GaugeValue, v, string(s))
	}
	ch <- prometheus.MustNewConstMetric(unlockBytesDesc, prometheus.GaugeValue, float64(st.BytesDone))
	ch <- prometheus.MustNewConstMetric(unlockTotalDesc, prometheus.GaugeValue, float64(st.BytesTotal))
}
