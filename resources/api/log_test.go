package api_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/refapi"
)

// syncBuffer is a bytes.Buffer safe for the server's and client's loggers.
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

func TestLogsHoldNoSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := newClock()
	srv, err := refapi.New(refapi.Config{
		Users:       []refapi.User{{ID: "u-1", Email: pilotEmail, Password: pilotPass, Role: "operator"}},
		DataDir:     t.TempDir(),
		KeyFragment: []byte("FRAGMENT-SECRET"),
		Logger:      log,
		Now:         clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Put("models", "m.small", []byte("PLAINTEXT-SECRET")); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c, err := api.New(ts.URL, api.Options{Logger: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Login(ctx(t), pilotEmail, "wrong-password-secret")
	if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx(t), "models", "m.small", hardware); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Get(ctx(t), "models", "m.small", hardware2)
	clk.Add(time.Hour) // expired: the client logs in again
	if _, err := c.KeyFragment(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx(t), "models", "u.small", []byte("UPLOAD-SECRET")); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "logged in") || !strings.Contains(out, "hardware mismatch") {
		t.Fatalf("the logs miss the calls:\n%s", out)
	}
	for _, s := range []string{pilotPass, "wrong-password-secret", "eyJ", "FRAGMENT-SECRET", "PLAINTEXT-SECRET", "UPLOAD-SECRET", hardware} {
		if strings.Contains(out, s) {
			t.Fatalf("logs hold %q:\n%s", s, out)
		}
	}
}
