package control_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources"
)

// stubStore logs in anyone and counts the logins.
type stubStore struct{ logins atomic.Int64 }

func (s *stubStore) Login(ctx context.Context, email, password string) error {
	s.logins.Add(1)
	return nil
}
func (s *stubStore) LoggedIn() bool   { return s.logins.Load() > 0 }
func (s *stubStore) CacheDir() string { return "/cache" }
func (s *stubStore) Open(ctx context.Context, folder, name string) (*resources.Resource, error) {
	return nil, resources.ErrNotFound
}
func (s *stubStore) Upload(ctx context.Context, folder, name string, r io.Reader) (int64, error) {
	return 0, resources.ErrNotFound
}

func guarded(t *testing.T, cfg control.Config) (*httptest.Server, *stubStore) {
	t.Helper()
	st := &stubStore{}
	cfg.Store = st
	srv := httptest.NewServer(control.NewHandler(cfg))
	t.Cleanup(srv.Close)
	return srv, st
}

// send sends method path to srv with the Host and headers given.
func send(t *testing.T, srv *httptest.Server, method, path, host string, hdr ...string) *http.Response {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"email":"a@b.c","password":"p"}`)
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestHostCheck(t *testing.T) {
	for _, c := range []struct {
		listen string
		hosts  []string
		host   string
		want   int
	}{
		{"127.0.0.1:8080", nil, "", 200}, // the server's own 127.0.0.1:port
		{"127.0.0.1:8080", nil, "localhost:8080", 200},
		{"127.0.0.1:8080", nil, "LOCALHOST.", 200},
		{"127.0.0.1:8080", nil, "[::1]:8080", 200},
		{"127.0.0.1:8080", nil, "evil.example", 403},
		{"127.0.0.1:8080", nil, "evil.example:8080", 403},
		{"127.0.0.1:8080", nil, "localhost.evil.example", 403},
		{"127.0.0.1:8080", nil, "192.168.1.5:8080", 403},
		{"unix:/run/azaion/loader.sock", nil, "localhost", 200},
		{"unix:/run/azaion/loader.sock", nil, "evil.example", 403},
		{"0.0.0.0:8080", nil, "192.168.1.5:8080", 200},
		{"0.0.0.0:8080", nil, "evil.example:8080", 403},
		{":8080", nil, "[fe80::1]:8080", 200},
		{"10.0.0.2:8080", nil, "10.0.0.2:8080", 200},
		{"10.0.0.2:8080", nil, "10.0.0.3:8080", 403},
		{"10.0.0.2:8080", []string{"loader.lan"}, "Loader.LAN:8080", 200},
		{"loader.lan:8080", nil, "loader.lan:8080", 200},
		{"loader.lan:8080", nil, "other.lan:8080", 403},
	} {
		srv, st := guarded(t, control.Config{Listen: c.listen, Hosts: c.hosts})
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			path := "/status"
			if m == http.MethodPost {
				path = "/login"
			}
			before := st.logins.Load()
			if got := send(t, srv, m, path, c.host).StatusCode; got != c.want {
				t.Errorf("listen %s, Host %q: %s %s = %d, want %d", c.listen, c.host, m, path, got, c.want)
			}
			if c.want == 403 && st.logins.Load() != before {
				t.Errorf("listen %s, Host %q: refused login reached the store", c.listen, c.host)
			}
		}
	}
}

func TestCrossSitePostsRefused(t *testing.T) {
	srv, st := guarded(t, control.Config{Listen: "127.0.0.1:8080"})
	self := strings.TrimPrefix(srv.URL, "http://")
	for _, c := range []struct {
		hdr  []string
		want int
	}{
		{nil, 200}, // curl, scripts
		{[]string{"Sec-Fetch-Site", "same-origin"}, 200},
		{[]string{"Sec-Fetch-Site", "none"}, 200},
		{[]string{"Sec-Fetch-Site", "cross-site"}, 403},
		{[]string{"Sec-Fetch-Site", "same-site"}, 403},
		{[]string{"Origin", "http://" + self}, 200},
		{[]string{"Origin", "http://evil.example"}, 403},
		{[]string{"Origin", "null"}, 403},
		{[]string{"Origin", "http://localhost:1"}, 403},
		{[]string{"Origin", "http://" + self, "Sec-Fetch-Site", "cross-site"}, 403},
	} {
		for _, path := range []string{"/login", "/unlock", "/upload/x.bin", "/load/x.bin"} {
			before := st.logins.Load()
			resp := send(t, srv, http.MethodPost, path, "", c.hdr...)
			if (resp.StatusCode == 403) != (c.want == 403) {
				t.Errorf("POST %s with %q = %d, want 403: %v", path, c.hdr, resp.StatusCode, c.want == 403)
			}
			if c.want == 403 && st.logins.Load() != before {
				t.Errorf("refused POST %s reached the store", path)
			}
		}
	}
	// Reading is not an action: a cross-site GET gets its answer (which a
	// browser keeps from the page: no CORS headers).
	if got := send(t, srv, http.MethodGet, "/health", "", "Sec-Fetch-Site", "cross-site").StatusCode; got != 200 {
		t.Fatalf("cross-site GET /health = %d", got)
	}
}

func TestBearerToken(t *testing.T) {
	const tok = "control-token-0123456789"
	srv, st := guarded(t, control.Config{Token: tok})
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/health", "", 200},
		{"GET", "/status", "", 401},
		{"GET", "/status", "Bearer wrong", 401},
		{"GET", "/status", "Bearer " + tok + "x", 401},
		{"GET", "/status", "Basic " + tok, 401},
		{"GET", "/status", tok, 401},
		{"GET", "/status", "Bearer " + tok, 200},
		{"POST", "/login", "", 401},
		{"POST", "/login", "Bearer " + tok, 200},
		{"GET", "/nope", "", 401},
	} {
		var hdr []string
		if c.auth != "" {
			hdr = []string{"Authorization", c.auth}
		}
		resp := send(t, srv, c.method, c.path, "", hdr...)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s with %q = %d, want %d", c.method, c.path, c.auth, resp.StatusCode, c.want)
		}
		if c.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", c.method, c.path)
		}
	}
	if st.logins.Load() != 1 {
		t.Fatalf("%d logins reached the store, want the one with the token", st.logins.Load())
	}
	// Without a token configured, none is asked for.
	open, _ := guarded(t, control.Config{})
	if got := send(t, open, "GET", "/status", "").StatusCode; got != 200 {
		t.Fatalf("no token configured: /status = %d", got)
	}
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run", "loader.sock")
	ln, err := control.Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v; want a socket of mode 0600", fi.Mode(), err)
	}
	if ln.Addr().String() != path {
		t.Fatalf("Addr() = %s", ln.Addr())
	}
	srv := control.NewServer("unix:"+path, control.NewHandler(control.Config{Store: &stubStore{}, Listen: "unix:" + path}))
	go srv.Serve(ln)
	resp, err := unixClient(path).Get("http://localhost/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /health over the socket: %v %v", resp, err)
	}
	resp.Body.Close()

	// A live socket is not stolen.
	if l2, err := control.Listen("unix:" + path); err == nil {
		l2.Close()
		t.Fatal("a second Listen took the live socket")
	}
	if _, err := unixClient(path).Get("http://localhost/health"); err != nil {
		t.Fatalf("after the refused second Listen: %v", err)
	}
	srv.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after Close: %v", err)
	}

	// A stale socket (its loader was killed) is reclaimed.
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close()
	ln, err = control.Listen("unix:" + path)
	if err != nil {
		t.Fatalf("stale socket not reclaimed: %v", err)
	}
	ln.Close()

	// Something that is not a socket is left alone.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o600)
	if l, err := control.Listen("unix:" + file); err == nil {
		l.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatal("regular file changed")
	}
	if _, err := control.Listen("unix:relative.sock"); err == nil {
		t.Fatal("a relative socket path was accepted")
	}
}

func TestListenTCPDefault(t *testing.T) {
	ln, err := control.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a := ln.Addr().(*net.TCPAddr); !a.IP.IsLoopback() {
		t.Fatalf("listening on %s", a)
	}
}

// TestSlowHeadersCut: a client that never finishes its headers is cut off
// by ReadHeaderTimeout (shortened here from NewServer's 10 s).
func TestSlowHeadersCut(t *testing.T) {
	srv := control.NewServer("127.0.0.1:0", control.NewHandler(control.Config{Store: &stubStore{}}))
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 30*time.Second || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("NewServer: ReadHeaderTimeout %v, IdleTimeout %v, MaxHeaderBytes %d", srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	srv.ReadHeaderTimeout = 300 * time.Millisecond
	ln, err := control.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if err != nil && !errorsIsReset(err) {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("slow client held the connection %v", d)
	}
}

func errorsIsReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), syscall.ECONNRESET.Error())
}
