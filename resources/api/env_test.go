package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/refapi"
)

const (
	pilotEmail = "Pilot@Example.com"
	pilotPass  = "s3cret-pass"
	otherEmail = "other@example.com"
	otherPass  = "other-pass"
	hardware   = "CPU: Test CPU. GPU: none. Memory: 16384. DriveSerial: SN-1."
	hardware2  = "CPU: Test CPU. GPU: none. Memory: 16384. DriveSerial: SN-2."
)

// clock is a settable time shared by the server's and the client's Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock                 { return &clock{t: time.Unix(1_800_000_000, 0)} }
func (c *clock) Now() time.Time        { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)   { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func ctx(t *testing.T) context.Context { return t.Context() }

type env struct {
	srv   *refapi.Server
	url   string
	clock *clock
}

// newEnv starts the reference server; wrap, when not nil, sits in front of
// its handler.
func newEnv(t *testing.T, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	e := &env{clock: newClock()}
	srv, err := refapi.New(refapi.Config{
		Users: []refapi.User{
			{ID: "u-1", Email: pilotEmail, Password: pilotPass, Role: "operator"},
			{ID: "u-2", Email: otherEmail, Password: otherPass, Role: "viewer"},
		},
		DataDir:     t.TempDir(),
		TokenTTL:    time.Hour,
		KeyFragment: []byte("key-fragment\x00\x01\xfe"),
		Now:         e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	e.srv, e.url = srv, ts.URL
	return e
}

func (e *env) client(t *testing.T, now func() time.Time) *api.Client {
	t.Helper()
	if now == nil {
		now = e.clock.Now
	}
	c, err := api.New(e.url, api.Options{Timeout: 5 * time.Second, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) loggedIn(t *testing.T) *api.Client {
	t.Helper()
	c := e.client(t, nil)
	if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// wantStatus checks that err is a *StatusError with code, and that its text
// holds no secret.
func wantStatus(t *testing.T, what string, err error, code int) *api.StatusError {
	t.Helper()
	var se *api.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("%s: error %v (%T), want a *StatusError with code %d", what, err, err, code)
	}
	if se.Code != code {
		t.Fatalf("%s: code %d (%v), want %d", what, se.Code, err, code)
	}
	noSecret(t, what, err.Error())
	return se
}

func noSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{pilotPass, otherPass, "eyJ"} {
		if strings.Contains(s, secret) {
			t.Fatalf("%s: %q holds a secret", what, s)
		}
	}
}

func (e *env) wantRequests(t *testing.T, what string, logins, gets int) {
	t.Helper()
	got := e.srv.Requests()
	if got[refapi.RouteLogin] != logins || got[refapi.RouteGet] != gets {
		t.Fatalf("%s: %d logins and %d gets, want %d and %d", what, got[refapi.RouteLogin], got[refapi.RouteGet], logins, gets)
	}
}
