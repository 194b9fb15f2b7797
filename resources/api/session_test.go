package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/refapi"
)

func TestReloginBeforeExp(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", []byte("m")); err != nil {
		t.Fatal(err)
	}
	c := e.loggedIn(t)
	if _, err := c.Get(ctx(t), "models", "m.small", hardware); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(59*time.Minute + 29*time.Second) // 31s left: still fresh
	if _, err := c.Get(ctx(t), "models", "m.small", hardware); err != nil {
		t.Fatal(err)
	}
	e.wantRequests(t, "31s before exp", 1, 2)
	e.clock.Add(2 * time.Second) // 29s left: renew first, no 401 seen
	if _, err := c.Get(ctx(t), "models", "m.small", hardware); err != nil {
		t.Fatal(err)
	}
	e.wantRequests(t, "29s before exp", 2, 3)
	cl, _ := c.Claims()
	if want := e.clock.Now().Add(time.Hour); !cl.ExpiresAt.Equal(want) {
		t.Fatalf("new token expires %v, want %v", cl.ExpiresAt, want)
	}
}

func TestExpiredTokenRefusedThenReloginAndRetry(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", []byte("m")); err != nil {
		t.Fatal(err)
	}
	// The client's clock stands still, so it believes its token fresh; the
	// server's moves past exp and answers 401.
	frozen := e.clock.Now()
	c := e.client(t, func() time.Time { return frozen })
	if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Hour)
	enc, err := c.Get(ctx(t), "models", "m.small", hardware)
	if err != nil {
		t.Fatalf("Get after exp: %v", err)
	}
	if got, err := resources.Decrypt(resources.APIKey(pilotEmail, pilotPass, hardware), enc); err != nil || string(got) != "m" {
		t.Fatalf("decrypts to %q, %v", got, err)
	}
	e.wantRequests(t, "401 then re-login and retry", 2, 2)
}

// refuse answers code to the first n calls of the route, then passes on.
func refuse(route string, code int, n int64) func(http.Handler) http.Handler {
	var seen atomic.Int64
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, route) && seen.Add(1) <= n {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				fmt.Fprintf(w, `{"message":"refused %d"}`, code)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestRefusedOnceReloginAndRetryOnce(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			e := newEnv(t, refuse("/binary-split/", code, 1))
			c := e.loggedIn(t)
			got, err := c.KeyFragment(ctx(t))
			if err != nil || string(got) != "key-fragment\x00\x01\xfe" {
				t.Fatalf("KeyFragment after one %d: %q, %v", code, got, err)
			}
			r := e.srv.Requests()
			if r[refapi.RouteLogin] != 2 || r[refapi.RouteKeyFragment] != 1 {
				t.Fatalf("requests %v: want 2 logins and the retried call", r)
			}
		})
	}
}

func TestRefusedTwiceGivesUp(t *testing.T) {
	var gets atomic.Int64
	e := newEnv(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/resources/get/") {
				gets.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"message":"password is not the token user's"}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := e.loggedIn(t)
	_, err := c.Get(ctx(t), "models", "m.small", hardware)
	se := wantStatus(t, "always 403", err, http.StatusForbidden)
	if se.Message != "password is not the token user's" {
		t.Fatalf("Message = %q", se.Message)
	}
	if gets.Load() != 2 || e.srv.Requests()[refapi.RouteLogin] != 2 {
		t.Fatalf("%d gets and %d logins, want 2 and 2", gets.Load(), e.srv.Requests()[refapi.RouteLogin])
	}
}

func TestConcurrentCallersShareOneRelogin(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", []byte("m")); err != nil {
		t.Fatal(err)
	}
	c := e.loggedIn(t)
	e.clock.Add(59*time.Minute + 50*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			_, err := c.Get(ctx(t), "models", "m.small", hardware)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.wantRequests(t, "32 callers near exp", 2, 32)
}

// tokenServer answers /login with the given token and everything else with
// 200 "ok" when the bearer is that token.
func tokenServer(t *testing.T, token string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestAbsurdTokens(t *testing.T) {
	refused := map[string]string{
		"megabyte of dots": strings.Repeat(".", 1<<20),
		"16 KiB of dots":   strings.Repeat(".", 16<<10),
		"four parts":       "a.b.c.d",
		"one part":         "abc",
		"empty":            "",
		"header injection": b64(`{"alg":"none"}`) + "." + b64(`{"sub":"x"}`) + ".\r\nX-Evil: 1",
		"claims not JSON":  b64(`{"alg":"none"}`) + "." + b64(`not json`) + ".",
		"header not JSON":  "!!!." + b64(`{"sub":"x"}`) + ".",
		"exp a string":     b64(`{"alg":"HS256"}`) + "." + b64(`{"exp":"soon"}`) + ".c2ln",
	}
	for name, tok := range refused {
		c, err := api.New(tokenServer(t, tok), api.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(ctx(t), pilotEmail, pilotPass)
		wantStatus(t, name, err, 0)
		if c.LoggedIn() {
			t.Fatalf("%s: logged in", name)
		}
	}
	// alg none without exp, and an exp far beyond time's range: unverified
	// claims are only read, so these log in and are used until refused.
	accepted := map[string]string{
		"alg none, no exp": b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(`{"sub":"u-1","email":"a@b"}`) + ".",
		"exp 1e300":        b64(`{"alg":"HS256"}`) + "." + b64(`{"sub":"u-1","exp":1e300,"iat":-1e300}`) + ".c2ln",
	}
	for name, tok := range accepted {
		c, err := api.New(tokenServer(t, tok), api.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cl, ok := c.Claims(); !ok || cl.Subject != "u-1" {
			t.Fatalf("%s: claims %+v", name, cl)
		}
		got, err := c.KeyFragment(ctx(t))
		if err != nil || string(got) != "ok" {
			t.Fatalf("%s: call with the token: %q, %v", name, got, err)
		}
	}
}

// TestSessionKeepsItsUser: a session keeps calling as its own user after
// another user's login, a renewal near exp included; the client's own
// calls follow the last login.
func TestSessionKeepsItsUser(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", []byte("m")); err != nil {
		t.Fatal(err)
	}
	c := e.client(t, nil)
	pilot, err := c.LoginSession(ctx(t), pilotEmail, pilotPass)
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.LoginSession(ctx(t), otherEmail, otherPass)
	if err != nil {
		t.Fatal(err)
	}
	if c.Session() != other || c.Email() != otherEmail || pilot.Email() != pilotEmail {
		t.Fatalf("current %s, pilot's session %s", c.Email(), pilot.Email())
	}
	// The API encrypts for the caller: the answer tells whose password
	// and token went with the call.
	decrypts := func(what string, enc []byte, err error, email, pass string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got, err := resources.Decrypt(resources.APIKey(email, pass, hardware), enc); err != nil || string(got) != "m" {
			t.Fatalf("%s: not %s's answer: %q, %v", what, email, got, err)
		}
	}
	enc, err := pilot.Get(ctx(t), "models", "m.small", hardware)
	decrypts("pilot's session after other's login", enc, err, pilotEmail, pilotPass)
	enc, err = c.Get(ctx(t), "models", "m.small", hardware)
	decrypts("client after other's login", enc, err, otherEmail, otherPass)

	e.clock.Add(59*time.Minute + 50*time.Second) // both near exp: renewed
	enc, err = pilot.Get(ctx(t), "models", "m.small", hardware)
	decrypts("pilot's session renewed", enc, err, pilotEmail, pilotPass)
	if sub := pilot.Claims().Subject; sub != "u-1" {
		t.Fatalf("pilot's renewed token is %q's", sub)
	}
	if cl, _ := c.Claims(); cl.Subject != "u-2" {
		t.Fatalf("the current session's token is %q's after pilot's renewal", cl.Subject)
	}
}
