package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/api"
)

func TestLoginKeepsSessionAndClaims(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil)
	if c.LoggedIn() {
		t.Fatal("logged in before Login")
	}
	if _, err := c.Get(ctx(t), "models", "m.small", hardware); !errors.Is(err, api.ErrNotLoggedIn) {
		t.Fatalf("Get before Login: %v, want ErrNotLoggedIn", err)
	}
	if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
		t.Fatal(err)
	}
	cl, ok := c.Claims()
	now := e.clock.Now()
	want := api.Claims{Subject: "u-1", Email: pilotEmail, Role: "operator", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if !ok || !c.LoggedIn() || cl.Subject != want.Subject || cl.Email != want.Email || cl.Role != want.Role ||
		!cl.IssuedAt.Equal(want.IssuedAt) || !cl.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("Claims() = %+v, %v; want %+v", cl, ok, want)
	}
	if c.Email() != pilotEmail {
		t.Fatalf("Email() = %q", c.Email())
	}
}

func TestLoginWrongPassword(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil)
	err := c.Login(ctx(t), pilotEmail, "wrong-"+pilotPass)
	wantStatus(t, "wrong password", err, http.StatusUnauthorized)
	if c.LoggedIn() {
		t.Fatal("logged in after a refused login")
	}
	// A refused login leaves an earlier session as it was.
	if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "wrong password again", c.Login(ctx(t), otherEmail, pilotPass), http.StatusUnauthorized)
	if !c.LoggedIn() || c.Email() != pilotEmail {
		t.Fatalf("session after a refused login: %v %q", c.LoggedIn(), c.Email())
	}
}

func TestAPIDownFailsQuickly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := api.New("http://"+addr, api.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Login(ctx(t), pilotEmail, pilotPass)
	wantStatus(t, "API down", err, 0)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("login against a closed port took %v", d)
	}
}

func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })
	c, err := api.New(ts.URL, api.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Login(ctx(t), pilotEmail, pilotPass)
	wantStatus(t, "hanging API", err, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v is not a deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout of 200ms took %v", d)
	}
}

func TestGetBindsHardware(t *testing.T) {
	e := newEnv(t, nil)
	plain := []byte("the small part")
	if err := e.srv.Put("models", "m.small", plain); err != nil {
		t.Fatal(err)
	}
	c := e.loggedIn(t)
	enc, err := c.Get(ctx(t), "models", "m.small", hardware)
	if err != nil {
		t.Fatal(err)
	}
	got, err := resources.Decrypt(resources.APIKey(c.Email(), pilotPass, hardware), enc)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Get decrypts to %q, %v", got, err)
	}
	_, err = c.Get(ctx(t), "models", "m.small", hardware2)
	wantStatus(t, "other hardware", err, http.StatusConflict)
	e.wantRequests(t, "409 is not retried", 1, 2)

	e.srv.ResetBinding(pilotEmail)
	enc, err = c.Get(ctx(t), "models", "m.small", hardware2)
	if err != nil {
		t.Fatalf("after ResetBinding: %v", err)
	}
	if got, err := resources.Decrypt(resources.APIKey(pilotEmail, pilotPass, hardware2), enc); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("after reset decrypts to %q, %v", got, err)
	}
	_, err = c.Get(ctx(t), "models", "nope.small", hardware2)
	wantStatus(t, "no such file", err, http.StatusNotFound)
	_, err = c.Get(ctx(t), "..", "m.small", hardware2)
	wantStatus(t, "bad folder", err, http.StatusBadRequest)
	e.wantRequests(t, "404 and 400 are not retried", 1, 5)
}

func TestUploadThenGetExactBytes(t *testing.T) {
	e := newEnv(t, nil)
	c := e.loggedIn(t)
	data := make([]byte, 1<<20+5)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx(t), "models", "big.onnx.small", data); err != nil {
		t.Fatal(err)
	}
	enc, err := c.Get(ctx(t), "models", "big.onnx.small", hardware)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(enc)) != resources.CipherLen(int64(len(data))) {
		t.Fatalf("Get: %d bytes, want %d", len(enc), resources.CipherLen(int64(len(data))))
	}
	got, err := resources.Decrypt(resources.APIKey(pilotEmail, pilotPass, hardware), enc)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("decrypted upload differs (%d bytes, %v)", len(got), err)
	}
	// cdn.yaml goes to and comes from the empty folder.
	if err := c.Upload(ctx(t), "", "cdn.yaml", []byte("host: x\n")); err != nil {
		t.Fatal(err)
	}
	enc, err = c.Get(ctx(t), "", "cdn.yaml", hardware)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := resources.Decrypt(resources.APIKey(pilotEmail, pilotPass, hardware), enc); err != nil || string(got) != "host: x\n" {
		t.Fatalf("cdn.yaml: %q, %v", got, err)
	}
	wantStatus(t, "upload bad name", c.Upload(ctx(t), "models", "../x", data[:10]), http.StatusBadRequest)
}

func TestGetBodyLimit(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	c, err := api.New(e.url, api.Options{MaxGet: 100, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx(t), "models", "m.small", hardware)
	wantStatus(t, "answer over MaxGet", err, 0)
}

func TestKeyFragment(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil)
	if _, err := c.KeyFragment(ctx(t)); !errors.Is(err, api.ErrNotLoggedIn) {
		t.Fatalf("KeyFragment before login: %v", err)
	}
	if err := c.Login(ctx(t), otherEmail, otherPass); err != nil {
		t.Fatal(err)
	}
	got, err := c.KeyFragment(ctx(t))
	if err != nil || string(got) != "key-fragment\x00\x01\xfe" {
		t.Fatalf("KeyFragment = %q, %v", got, err)
	}
}

func TestNewValidatesURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8081", "ftp://127.0.0.1", "http://", "http://user:pw@127.0.0.1", "http://127.0.0.1/?a=b", "http://127.0.0.1/#x", "://x"} {
		if _, err := api.New(u, api.Options{}); err == nil {
			t.Fatalf("New(%q) accepted", u)
		} else {
			noSecret(t, u, err.Error())
		}
	}
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	e := newEnv(t, func(h http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/api/", http.StripPrefix("/api", h))
		return mux
	})
	c, err := api.New(e.url+"/api/", api.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx(t), pilotEmail, pilotPass); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeyFragment(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
