package control_test

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/fs"
	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/testbed"
)

// samples is one scrape of GET /metrics: each series as the text format
// writes it ("name{a=\"x\",b=\"y\"}") to its value.
type samples map[string]float64

func scrape(t *testing.T, url string) samples {
	t.Helper()
	r := do(t, mustRequest(t, "GET", url+"/metrics", nil))
	if r.code != 200 {
		t.Fatalf("GET /metrics: %v", r)
	}
	out := samples{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the series of metric name whose labels include every one of
// labels (`k="v"`); has reports whether there was one.
func (s samples) sum(name string, labels ...string) (v float64, has bool) {
	for series, x := range s {
		n, ls, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		set := strings.Split(strings.TrimSuffix(ls, "}"), ",")
		ok := true
		for _, l := range labels {
			found := false
			for _, e := range set {
				found = found || e == l
			}
			ok = ok && found
		}
		if ok {
			v += x
			has = true
		}
	}
	return v, has
}

// delta is the change of sum(name, labels) from a to b.
func delta(a, b samples, name string, labels ...string) float64 {
	x, _ := a.sum(name, labels...)
	y, _ := b.sum(name, labels...)
	return y - x
}

const (
	mReq  = "azaion_backend_requests_total"
	mFail = "azaion_backend_failures_total"
	mDur  = "azaion_backend_request_duration_seconds_count"
	mErr  = "azaion_mount_errors_total"
)

// TestLoaderMetrics scrapes /metrics over HTTP around induced failures of
// the Resource API, the CDN and reads through a real mount, and checks that
// each counts exactly what happened.
func TestLoaderMetrics(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true, ProxyAPI: true})
	folder := bed.NewFolder(t)
	up := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	up.loginOK(t)
	const size = 3 << 20
	up.uploadOK(t, folder, "m.bin", content(11, size))
	up.uploadOK(t, folder, "cold.bin", content(12, 5000))

	reg := prometheus.NewRegistry()
	lm := control.NewLoaderMetrics(reg)
	apiTr, cdnTr := http.DefaultTransport.(*http.Transport).Clone(), cdn.NewTransport()
	store := bed.Store(t, testbed.StoreOptions{Timeout: 2 * time.Second,
		APIHTTP: &http.Client{Transport: lm.Transport("api", api.Operation, api.Operations, apiTr)},
		CDNHTTP: &http.Client{Transport: lm.Transport("cdn", cdn.Operation, cdn.Operations, cdnTr)},
	})
	url := serveStoreAs(t, store, control.Config{Registry: reg, Build: control.BuildInfo{Version: "v1.2.3", Commit: "0123abc"}})

	// Before anything: the series alerts look for exist, at zero.
	m0 := scrape(t, url)
	for series, want := range map[string]float64{
		"azaion_loader_logged_in": 0,
		`azaion_loader_build_info{commit="0123abc",goversion="` + runtime.Version() + `",version="v1.2.3"}`: 1,
		mFail + `{backend="cdn",kind="unreachable",operation="get"}`:                                        0,
		mFail + `{backend="cdn",kind="timeout",operation="tail"}`:                                           0,
		mFail + `{backend="api",kind="status_5xx",operation="resource_get"}`:                                0,
		mFail + `{backend="api",kind="unreachable",operation="login"}`:                                      0,
		mReq + `{backend="cdn",operation="put"}`:                                                            0,
		mErr + `{errno="EIO"}`:                                                                              0,
		mErr + `{errno="EACCES"}`:                                                                           0,
	} {
		if got, ok := m0[series]; !ok || got != want {
			t.Errorf("before any request: %s = %v (present %v), want %v", series, got, ok, want)
		}
	}

	// A refused login: one call, a 4xx.
	if r := do(t, req(t, "POST", url, "/login", "application/json", `{"email":"`+bed.Email+`","password":"wrong"}`)); r.code != 401 {
		t.Fatalf("login with a wrong password: %v", r)
	}
	m1 := scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{mReq, []string{`backend="api"`, `operation="login"`}, 1},
		{mDur, []string{`backend="api"`, `operation="login"`}, 1},
		{mFail, []string{`backend="api"`, `operation="login"`, `kind="status_4xx"`}, 1},
		{mFail, nil, 1},
		{mReq, []string{`backend="cdn"`}, 0},
		{"azaion_loader_logged_in", nil, 0},
	} {
		if d := delta(m0, m1, c.name, c.labels...); d != c.want {
			t.Errorf("after a refused login: %s%v moved by %v, want %v", c.name, c.labels, d, c.want)
		}
	}

	// A login: the token, then cdn.yaml; nothing fails; logged_in 0 → 1.
	if r := do(t, req(t, "POST", url, "/login", "application/json", `{"email":"`+bed.Email+`","password":"`+bed.Password+`"}`)); r.code != 200 {
		t.Fatalf("login: %v", r)
	}
	m2 := scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{mReq, []string{`backend="api"`, `operation="login"`}, 1},
		{mReq, []string{`backend="api"`, `operation="resource_get"`}, 1},
		{mReq, []string{`backend="api"`}, 2},
		{mFail, nil, 0},
	} {
		if d := delta(m1, m2, c.name, c.labels...); d != c.want {
			t.Errorf("after a login: %s%v moved by %v, want %v", c.name, c.labels, d, c.want)
		}
	}
	if v := m2["azaion_loader_logged_in"]; v != 1 {
		t.Errorf("azaion_loader_logged_in = %v after a login, want 1", v)
	}

	// An upload (PROTOCOL §4, upload order): the big part PUT under a
	// staging key, copied into place and the staging object deleted; the
	// small part it replaces asked for (a new resource: one 404, counted
	// as a not_found failure) and the new one stored.
	upCT, upBody := mpType, multipartBody(folderPart(folder), filePart("u.bin", strings.Repeat("u", 5000)))
	if r := do(t, req(t, "POST", url, "/upload/u.bin", upCT, upBody)); r.code != 200 {
		t.Fatalf("upload: %v", r)
	}
	m2u := scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{mReq, []string{`backend="cdn"`, `operation="put"`}, 1},
		{mReq, []string{`backend="cdn"`, `operation="copy"`}, 1},
		{mReq, []string{`backend="cdn"`, `operation="delete"`}, 1},
		{mReq, []string{`backend="cdn"`}, 3},
		{mReq, []string{`backend="api"`, `operation="resource_get"`}, 1},
		{mReq, []string{`backend="api"`, `operation="resource_put"`}, 1},
		{mReq, []string{`backend="api"`}, 2},
		{mFail, []string{`backend="api"`, `operation="resource_get"`, `kind="not_found"`}, 1},
		{mFail, nil, 1},
	} {
		if d := delta(m2, m2u, c.name, c.labels...); d != c.want {
			t.Errorf("after an upload: %s%v moved by %v, want %v", c.name, c.labels, d, c.want)
		}
	}
	m2 = m2u

	// Reads through the mount while the CDN works: CDN requests, no failure.
	mnt := t.TempDir()
	srv, err := fs.Mount(mnt, store, fs.Options{ReadTimeout: 2 * time.Second, OnErrno: lm.Errno})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	f, err := os.OpenFile(filepath.Join(mnt, folder, "m.bin"), os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatalf("open through the mount: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read through the mount: %v", err)
	}
	m3 := scrape(t, url)
	if d := delta(m2, m3, mReq, `backend="cdn"`); d < 1 {
		t.Errorf("reads through the mount: %v CDN requests counted", d)
	}
	if d := delta(m2, m3, mFail); d != 0 {
		t.Errorf("reads through the mount with the CDN up: %v failures counted", d)
	}
	if d := delta(m2, m3, mErr); d != 0 {
		t.Errorf("reads through the mount that worked: %v mount errors counted", d)
	}
	if d := delta(m0, m3, mReq, `operation="other"`); d != 0 {
		t.Errorf("%v backend requests the loader made have no operation name", d)
	}

	// The CDN's port closed: every CDN request of a /load of an uncached
	// resource fails as unreachable, and each direct read of uncached
	// bytes through the mount fails with one EIO.
	// (Its idle connections go too: a request on one that the server
	// closed would fail as "network", a cut, not as "unreachable".)
	bed.CDNProxy.Close()
	cdnTr.CloseIdleConnections()
	if r := do(t, req(t, "POST", url, "/load/cold.bin", "application/json", `{"folder":"`+folder+`"}`)); r.code != 502 {
		t.Fatalf("load with the CDN down: %v, want 502", r)
	}
	const failedReads = 3
	for i := range failedReads {
		_, err := f.ReadAt(buf, int64(1<<20+i<<18))
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("read %d through the mount with the CDN down: %v, want EIO", i, err)
		}
	}
	m4 := scrape(t, url)
	// A read-ahead GET still in flight when the proxy closed fails as a
	// cut ("network") or is given up ("canceled"); every later one finds
	// no one listening.
	cdnReq, cdnFail := delta(m3, m4, mReq, `backend="cdn"`), delta(m3, m4, mFail, `backend="cdn"`)
	unreachable := delta(m3, m4, mFail, `backend="cdn"`, `kind="unreachable"`)
	cut := delta(m3, m4, mFail, `backend="cdn"`, `kind="network"`) + delta(m3, m4, mFail, `backend="cdn"`, `kind="canceled"`)
	if cdnReq < 1+failedReads || cdnFail != cdnReq || unreachable+cut != cdnReq || unreachable < 1+failedReads {
		t.Errorf("with the CDN down: %v CDN requests, %v failures (%v unreachable, %v cut or canceled); want every request a failure, at least %d unreachable",
			cdnReq, cdnFail, unreachable, cut, 1+failedReads)
	}
	if d := delta(m3, m4, mDur, `backend="cdn"`); d != cdnReq {
		t.Errorf("with the CDN down: %v CDN latencies observed for %v requests", d, cdnReq)
	}
	if d := delta(m3, m4, mFail, `backend="api"`); d != 0 {
		t.Errorf("with only the CDN down: %v API failures counted", d)
	}
	if d := delta(m3, m4, mErr, `errno="EIO"`); d != failedReads {
		t.Errorf("%d reads failed with EIO through the mount: mount_errors_total{errno=\"EIO\"} moved by %v", failedReads, d)
	}
	if d := delta(m3, m4, mErr); d != failedReads {
		t.Errorf("%d failed reads: mount errors moved by %v in all", failedReads, d)
	}

	// The Resource API's port closed: a login's calls fail as unreachable;
	// the session that works stays (/status authenticated, logged_in).
	bed.APIProxy.Close()
	apiTr.CloseIdleConnections()
	if r := do(t, req(t, "POST", url, "/login", "application/json", `{"email":"`+bed.Email+`","password":"`+bed.Password+`"}`)); r.code != 401 {
		t.Fatalf("login with the API down: %v, want 401", r)
	}
	m5 := scrape(t, url)
	apiReq := delta(m4, m5, mReq, `backend="api"`, `operation="login"`)
	if apiReq < 1 || delta(m4, m5, mFail, `backend="api"`, `operation="login"`, `kind="unreachable"`) != apiReq || delta(m4, m5, mFail) != apiReq {
		t.Errorf("login with the API down: %v login calls, failures %v; want each call one unreachable failure", apiReq, delta(m4, m5, mFail))
		for k, v := range m5 {
			if v != m4[k] && strings.HasPrefix(k, mFail) {
				t.Logf("%s moved by %v", k, v-m4[k])
			}
		}
	}
	if v := m5["azaion_loader_logged_in"]; v != 1 {
		t.Errorf("azaion_loader_logged_in = %v after a refused login kept the session, want 1", v)
	}
}
