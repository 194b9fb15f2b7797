package control_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azaion/loader/control"
)

// syncBuffer is a log sink that handlers may write to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rawHTTP writes one request byte for byte to addr (no client checks or
// cleans it) and returns the status code the server answered.
func rawHTTP(t *testing.T, addr, method, target, host string, hdr map[string]string, body string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.40s %.60s: no answer: %v", method, target, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func randLetters(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'A' + byte(r.IntN(26))
	}
	return string(b)
}

// metricSeries is the set of series of a /metrics answer (one per sample
// line) and the answer's size.
func metricSeries(t *testing.T, url, token string) (map[string]bool, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	set := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		set[line[:strings.LastIndexByte(line, ' ')]] = true
	}
	return set, len(body)
}

// TestHostileLabelsBounded: requests with huge methods, paths, request IDs,
// Hosts and Origins, refused or not, leave /metrics with the same series
// however many there are and whatever they carry, and every log line short.
func TestHostileLabelsBounded(t *testing.T) {
	const token = "control-token-0123456789"
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(control.NewHandler(control.Config{
		Store: &stubStore{}, Token: token, Registry: reg,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	rng := rand.New(rand.NewPCG(1, 2))
	const huge = 16 << 10
	auth := map[string]string{"Authorization": "Bearer " + token}
	// round sends every kind of hostile request n times, each with fresh
	// random bytes.
	round := func(n int) {
		for range n {
			id := map[string]string{"Authorization": "Bearer " + token, "X-Request-Id": "\xff\"id " + randLetters(rng, 2<<10)}
			for _, c := range []struct {
				method, target, host string
				hdr                  map[string]string
				want                 int
			}{
				// A method no route knows, past every check.
				{randLetters(rng, huge), "/status", "localhost", auth, 405},
				{randLetters(rng, huge), "/" + randLetters(rng, huge), "localhost", auth, 405},
				{"GET", "/" + randLetters(rng, huge), "localhost", auth, 404},
				// Refused by the guard: foreign Host, cross-site, no token.
				{randLetters(rng, huge), "/login", randLetters(rng, 4<<10) + ".example", auth, 403},
				{"POST", "/login", "localhost", map[string]string{"Authorization": "Bearer " + token, "Origin": "http://" + randLetters(rng, huge)}, 403},
				{randLetters(rng, huge), "/" + randLetters(rng, huge), "localhost", nil, 401},
				// A huge request ID on an answered request.
				{"GET", "/status", "localhost", id, 200},
				{"GET", "/load/%ff%00" + randLetters(rng, huge), "localhost", id, 405},
			} {
				if got := rawHTTP(t, addr, c.method, c.target, c.host, c.hdr, ""); got != c.want {
					t.Fatalf("%.20s… %.30s… Host %.20s…: %d, want %d", c.method, c.target, c.host, got, c.want)
				}
			}
		}
	}
	metricSeries(t, srv.URL, token) // its own series are there from now on
	round(5)
	first, size1 := metricSeries(t, srv.URL, token)
	round(100)
	second, size2 := metricSeries(t, srv.URL, token)
	if len(first) != len(second) {
		t.Errorf("%d series after 5 rounds, %d after 105", len(first), len(second))
	}
	for s := range second {
		if !first[s] {
			t.Errorf("new series after more hostile requests: %.200s", s)
		}
	}
	// The counters' values grow by a digit or two; nothing else does.
	if size2 > size1+512 || size2 > 64<<10 {
		t.Errorf("/metrics grew from %d to %d bytes", size1, size2)
	}
	var refused []string
	for s := range second {
		if strings.HasPrefix(s, "azaion_http_refused_total") || strings.HasPrefix(s, "azaion_http_requests_total") {
			refused = append(refused, s)
		}
	}
	sort.Strings(refused)
	wantSeries := []string{
		`azaion_http_refused_total{reason="cross_site"}`,
		`azaion_http_refused_total{reason="host"}`,
		`azaion_http_refused_total{reason="token"}`,
		`azaion_http_requests_total{code="200",method="GET",route="/metrics"}`,
		`azaion_http_requests_total{code="200",method="GET",route="/status"}`,
		`azaion_http_requests_total{code="401",method="other",route="unmatched"}`,
		`azaion_http_requests_total{code="403",method="POST",route="unmatched"}`,
		`azaion_http_requests_total{code="403",method="other",route="unmatched"}`,
		`azaion_http_requests_total{code="404",method="GET",route="unmatched"}`,
		`azaion_http_requests_total{code="405",method="GET",route="unmatched"}`,
		`azaion_http_requests_total{code="405",method="other",route="unmatched"}`,
	}
	if strings.Join(refused, "\n") != strings.Join(wantSeries, "\n") {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(refused, "\n"), strings.Join(wantSeries, "\n"))
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 105*7 {
		t.Fatalf("%d log lines for %d requests", len(lines), 105*7)
	}
	for _, l := range lines {
		if len(l) > 1024 {
			t.Fatalf("log line of %d bytes: %.300s…", len(l), l)
		}
		if strings.Contains(l, "\xff") || strings.Contains(l, "\x00") {
			t.Fatalf("raw client byte in a log line: %q", l)
		}
	}
}
