package control_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/control"
)

// sinkStore is a stubStore whose uploads read the whole body.
type sinkStore struct {
	stubStore
	mu  sync.Mutex
	got map[string][32]byte // folder/name → SHA-256 of the upload
}

func (s *sinkStore) Upload(ctx context.Context, folder, name string, r io.Reader) (int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return n, fmt.Errorf("upload %s/%s: read: %w", folder, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[string][32]byte{}
	}
	s.got[folder+"/"+name] = [32]byte(h.Sum(nil))
	return n, nil
}

// serveReal serves cfg with NewServer on a Listen listener, as the loader
// does, and returns its address.
func serveReal(t *testing.T, cfg control.Config) string {
	t.Helper()
	ln, err := control.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(ln.Addr().String(), control.NewHandler(cfg))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// slowRequest writes a request's head and the first part of its body to
// addr, and then nothing more. A length below 0 sends the body chunked.
func slowRequest(t *testing.T, addr, method, path, ctype string, length int, start string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	framing := fmt.Sprintf("Content-Length: %d", length)
	if length < 0 {
		framing = "Transfer-Encoding: chunked"
	}
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\n%s\r\n\r\n%s", method, path, ctype, framing, start)
	return c
}

// answerThenClose reads the answer on c and then waits for the server to
// close c; it returns the status, the detail and when the close came.
func answerThenClose(t *testing.T, c net.Conn, limit time.Duration) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", limit, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := io.ReadAll(br); err != nil && !errorsIsReset(err) {
		t.Fatalf("connection not closed within %v: %v", limit, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), time.Since(start)
}

// TestSlowBodiesCut: JSON bodies that stop half-way, and a multipart body
// that stops before its file part, are answered 408 and their connection
// closed within the body timeout, whatever the route.
func TestSlowBodiesCut(t *testing.T) {
	const bodyTimeout = 400 * time.Millisecond
	addr := serveReal(t, control.Config{Store: &sinkStore{}, BodyTimeout: bodyTimeout,
		UploadMinBytes: 64 << 10, UploadWindow: bodyTimeout})
	const mp = "multipart/form-data; boundary=XX"
	for _, c := range []struct {
		method, path, ctype, start string
		want                       int
		detail                     string
	}{
		{"POST", "/login", "application/json", `{"email":"a@b.c","pass`, 408, `{"detail":"request body too slow: not all received within 400ms"}`},
		{"POST", "/unlock", "application/json", `{"email":"a@b.c","pass`, 501, `{"detail":"unlock is not configured on this loader"}`},
		{"POST", "/load/m.bin", "application/json", `{"folder":"mod`, 408, `{"detail":"request body too slow: not all received within 400ms"}`},
		{"POST", "/login", "application/json", "9\r\n{\"email\":\r\n", 408, `{"detail":"request body too slow: not all received within 400ms"}`},
		{"POST", "/upload/m.bin", mp, "--XX\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\nmodels\r\n--XX\r\n", 408,
			`{"detail":"request body too slow: less than 64 KiB in 400ms"}`},
		// Routes that never read the body: the server discards it under
		// the same deadline.
		{"POST", "/health", "application/json", `{"a`, 405, `{"detail":"method not allowed: this route takes GET, HEAD"}`},
		{"POST", "/nope", "application/json", `{"a`, 404, `{"detail":"no such endpoint"}`},
	} {
		length := 1000
		if strings.HasPrefix(c.start, "9\r\n") {
			length = -1
		}
		conn := slowRequest(t, addr, c.method, c.path, c.ctype, length, c.start)
		code, detail, took := answerThenClose(t, conn, 10*time.Second)
		if code != c.want || detail != c.detail {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, code, detail, c.want, c.detail)
		}
		// The bound, plus slack for a loaded machine: a connection
		// held open would take the 10 s of answerThenClose's limit.
		if took < bodyTimeout/2 || took > bodyTimeout+3*time.Second {
			t.Errorf("%s %s: closed after %v, want about %v", c.method, c.path, took, bodyTimeout)
		}
	}
}

// pacedReader gives chunk bytes of data every interval.
type pacedReader struct {
	data     []byte
	chunk    int
	interval time.Duration
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(p.interval)
	n := copy(b[:min(len(b), p.chunk)], p.data)
	p.data = p.data[n:]
	return n, nil
}

// TestUploadMinimumRate: an upload below the minimum rate is cut with a
// 408; one above it goes through whole however long it takes, past the
// JSON body timeout and many windows.
func TestUploadMinimumRate(t *testing.T) {
	const window = 500 * time.Millisecond
	st := &sinkStore{}
	addr := serveReal(t, control.Config{Store: st, BodyTimeout: window, UploadMinBytes: 32 << 10, UploadWindow: window})
	url := "http://" + addr
	data := make([]byte, 640<<10)
	rand.NewChaCha8([32]byte{3}).Read(data)
	hc := &http.Client{Timeout: time.Minute}

	// 1 KiB every 50 ms: 20 KiB/s, under 32 KiB per 500 ms.
	start := time.Now()
	resp, err := hc.Do(uploadRequest(url, "models", "slow.bin", &pacedReader{data: data, chunk: 1 << 10, interval: 50 * time.Millisecond}))
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := `{"detail":"request body too slow: less than 32 KiB in 500ms"}`; resp.StatusCode != 408 || strings.TrimSpace(string(body)) != want {
			t.Errorf("trickling upload: %d %s, want 408 %s", resp.StatusCode, body, want)
		}
	}
	// About one window, plus slack for a loaded machine; uncut, the
	// trickle would take 32 s.
	if took := time.Since(start); took > window+4*time.Second {
		t.Errorf("trickling upload cut after %v, want about %v", took, window)
	}
	if _, ok := st.got["models/slow.bin"]; ok {
		t.Error("the trickling upload was stored")
	}

	// 16 KiB every 100 ms: 160 KiB/s, over 64 KiB/s; 4 s in all.
	start = time.Now()
	resp, err = hc.Do(uploadRequest(url, "models", "steady.bin", &pacedReader{data: data, chunk: 16 << 10, interval: 100 * time.Millisecond}))
	if err != nil {
		t.Fatalf("steady upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("steady upload after %v: %d %s", time.Since(start), resp.StatusCode, body)
	}
	if got := st.got["models/steady.bin"]; got != sha256.Sum256(data) {
		t.Fatal("steady upload: the store got other bytes")
	}
	if took := time.Since(start); took < 4*window {
		t.Fatalf("steady upload took %v: the test did not outlast the window", took)
	}
}

// TestConnectionCap: with MaxConns connections open, the next one waits
// unanswered while the open ones keep working, and is answered as soon as
// one of them closes.
func TestConnectionCap(t *testing.T) {
	addr := serveReal(t, control.Config{Store: &stubStore{}})
	health := "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
	ask := func(c net.Conn, br *bufio.Reader, limit time.Duration) error {
		c.SetDeadline(time.Now().Add(limit))
		if _, err := io.WriteString(c, health); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte("healthy")) {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	}
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	var open []conn
	for i := range control.MaxConns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if err := ask(c, br, 5*time.Second); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		open = append(open, conn{c, br})
	}
	extra, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extraBR := bufio.NewReader(extra)
	io.WriteString(extra, health)
	extra.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := extraBR.Peek(1); err == nil {
		t.Fatalf("connection %d was answered with %d open", control.MaxConns+1, control.MaxConns)
	}
	for i, c := range open {
		if err := ask(c.c, c.br, 5*time.Second); err != nil {
			t.Fatalf("connection %d with one more waiting: %v", i+1, err)
		}
	}
	open[0].c.Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(extraBR, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("waiting connection after one closed: %v %v", resp, err)
	}
	resp.Body.Close()
}
