package refapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/refapi"
)

// goldenKey is api_key("pilot@example.com", pilotPass, hardware), computed
// outside Go (Python hashlib) from PROTOCOL §1.
const goldenKey = "Vn38cj5RU+/OILcbwr3IOurYpURhbTuZPNSCelHhlWuMLEh7/L8dmoIp4MnUU1Fh"

func TestLoginIssuesHS256TokenWithClaims(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, "  PILOT@example.COM ", pilotPass)
	var c struct {
		Email, Role string
		jwt.RegisteredClaims
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(e.clock.Now))
	if _, err := p.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return signingKey, nil }); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	now := e.clock.Now()
	if c.Subject != "u-1" || c.Email != pilotEmail || c.Role != "operator" ||
		!c.IssuedAt.Equal(now) || !c.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("claims = %+v", c)
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name, ct, body string
		want           int
	}{
		{"wrong password", "application/json", `{"email":"pilot@example.com","password":"nope"}`, 401},
		{"password of another user", "application/json", `{"email":"pilot@example.com","password":"other-pass"}`, 401},
		{"unknown email", "application/json", `{"email":"who@example.com","password":"s3cret-pass"}`, 401},
		{"missing password", "application/json", `{"email":"pilot@example.com"}`, 400},
		{"empty email", "application/json", `{"email":"  ","password":"s3cret-pass"}`, 400},
		{"null password", "application/json", `{"email":"pilot@example.com","password":null}`, 400},
		{"number password", "application/json", `{"email":"pilot@example.com","password":5}`, 400},
		{"truncated", "application/json", `{"email":"pilot@example.com","pass`, 400},
		{"not an object", "application/json", `["pilot@example.com","s3cret-pass"]`, 400},
		{"two objects", "application/json", `{"email":"pilot@example.com","password":"s3cret-pass"}{}`, 400},
		{"empty body", "application/json", ``, 400},
		{"text/plain", "text/plain", `{"email":"pilot@example.com","password":"s3cret-pass"}`, 400},
		{"no content type", "", `{"email":"pilot@example.com","password":"s3cret-pass"}`, 400},
		{"form", "application/x-www-form-urlencoded", `email=pilot@example.com&password=s3cret-pass`, 400},
		{"oversized", "application/json", `{"email":"pilot@example.com","password":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
	}
	for _, tc := range cases {
		code, body := e.do(t, http.MethodPost, "/login", tc.ct, "", []byte(tc.body))
		wantCode(t, tc.name, code, body, tc.want)
		if strings.Contains(string(body), "s3cret") {
			t.Fatalf("%s: answer %q holds the password", tc.name, body)
		}
	}
	// charset parameter is fine, and the server still serves.
	code, body := e.do(t, http.MethodPost, "/login", "application/json; charset=utf-8", "",
		[]byte(`{"email":"pilot@example.com","password":"s3cret-pass","extra":1}`))
	wantCode(t, "login after refusals", code, body, 200)
}

func TestGetGoldenKeyDecryptsAnswer(t *testing.T) {
	if got := resources.APIKey(pilotEmail, pilotPass, hardware); got != goldenKey {
		t.Fatalf("APIKey = %s, want %s", got, goldenKey)
	}
	e := newEnv(t, nil)
	plain := []byte("small part bytes \x00\x01\x02 of a model")
	if err := e.srv.Put("models", "yolo.onnx.small", plain); err != nil {
		t.Fatal(err)
	}
	tok := e.login(t, pilotEmail, pilotPass)
	req, _ := json.Marshal(getBody("yolo.onnx.small", pilotPass, hardware))
	hreq, _ := http.NewRequest(http.MethodPost, e.url+"/resources/get/models", bytes.NewReader(req))
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("get: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), buf.Bytes())
	}
	if int64(buf.Len()) != resources.CipherLen(int64(len(plain))) {
		t.Fatalf("answer of %d bytes, want %d", buf.Len(), resources.CipherLen(int64(len(plain))))
	}
	key := sha256.Sum256([]byte(goldenKey))
	got, err := resources.DecryptKey(key[:], buf.Bytes())
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt with golden key: %q, %v", got, err)
	}
}

// forge makes a token with any header and claims, signed with HMAC-SHA256
// over key, or unsigned when key is nil.
func forge(header, claims map[string]any, key []byte) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	s := enc(header) + "." + enc(claims)
	if key == nil {
		return s + "."
	}
	sig, _ := jwt.SigningMethodHS256.Sign(s, key)
	return s + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestGetRefusesBadTokens(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", []byte("x")); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now().Unix()
	good := map[string]any{"sub": "u-1", "email": pilotEmail, "role": "operator", "iat": now, "exp": now + 3600}
	hs384, _ := jwt.NewWithClaims(jwt.SigningMethodHS384, jwt.MapClaims(good)).SignedString(signingKey)
	noExp := map[string]any{"sub": "u-1", "email": pilotEmail, "iat": now}
	unknown := map[string]any{"sub": "u-9", "email": pilotEmail, "iat": now, "exp": now + 3600}
	expired := e.login(t, pilotEmail, pilotPass)
	tokens := map[string]string{
		"alg none":         forge(map[string]any{"alg": "none", "typ": "JWT"}, good, nil),
		"HS384":            hs384,
		"other key":        forge(map[string]any{"alg": "HS256", "typ": "JWT"}, good, []byte("another key")),
		"no exp":           forge(map[string]any{"alg": "HS256", "typ": "JWT"}, noExp, signingKey),
		"unknown user":     forge(map[string]any{"alg": "HS256", "typ": "JWT"}, unknown, signingKey),
		"garbage":          "not-a-token",
		"megabyte of dots": strings.Repeat(".", 1<<20),
		"oversized":        forge(map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{"sub": "u-1", "exp": now + 3600, "pad": strings.Repeat("x", 8000)}, signingKey),
	}
	// A forged token signed right is accepted: the forge itself is sound.
	ok := forge(map[string]any{"alg": "HS256", "typ": "JWT"}, good, signingKey)
	code, body := e.postJSON(t, "/resources/get/models", ok, getBody("m.small", pilotPass, hardware))
	wantCode(t, "well-signed forged token", code, body, 200)

	e.clock.Add(time.Hour + time.Second)
	tokens["expired"] = expired
	for name, tok := range tokens {
		code, body := e.postJSON(t, "/resources/get/models", tok, getBody("m.small", pilotPass, hardware))
		wantCode(t, name, code, body, 401)
	}
	code, body = e.postJSON(t, "/resources/get/models", "", getBody("m.small", pilotPass, hardware))
	wantCode(t, "no token", code, body, 401)
	code, body = e.do(t, http.MethodGet, "/binary-split/key-fragment", "", expired, nil)
	wantCode(t, "key fragment, expired", code, body, 401)
}

func TestGetChecksInOrder(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", []byte("model")); err != nil {
		t.Fatal(err)
	}
	tok := e.login(t, pilotEmail, pilotPass)
	steps := []struct {
		name, path, token string
		body              any
		want              int
	}{
		{"bad token beats bad body", "/resources/get/models", "x.y.z", "nonsense", 401},
		{"bad name beats wrong password", "/resources/get/models", tok, getBody("../m.small", otherPass, hardware), 400},
		{"missing hardware", "/resources/get/models", tok, map[string]string{"fileName": "m.small", "password": pilotPass}, 400},
		{"empty hardware", "/resources/get/models", tok, getBody("m.small", pilotPass, ""), 400},
		{"another user's password", "/resources/get/models", tok, getBody("m.small", otherPass, hardware), 403},
		{"no such file does not bind", "/resources/get/models", tok, getBody("nope.small", pilotPass, hardware2), 404},
		{"first get binds", "/resources/get/models", tok, getBody("m.small", pilotPass, hardware), 200},
		{"other hardware", "/resources/get/models", tok, getBody("m.small", pilotPass, hardware2), 409},
		{"mismatch beats not found", "/resources/get/models", tok, getBody("nope.small", pilotPass, hardware2), 409},
		{"wrong password beats mismatch", "/resources/get/models", tok, getBody("m.small", otherPass, hardware2), 403},
		{"bound hardware still works", "/resources/get/models", tok, getBody("m.small", pilotPass, hardware), 200},
		{"empty folder holds only cdn.yaml", "/resources/get/", tok, getBody("m.small", pilotPass, hardware), 400},
		{"cdn.yaml not stored", "/resources/get/", tok, getBody("cdn.yaml", pilotPass, hardware), 404},
	}
	for _, s := range steps {
		code, body := e.postJSON(t, s.path, s.token, s.body)
		wantCode(t, s.name, code, body, s.want)
	}
	e.srv.ResetBinding("  PILOT@EXAMPLE.com")
	code, body := e.postJSON(t, "/resources/get/models", tok, getBody("m.small", pilotPass, hardware2))
	wantCode(t, "after ResetBinding", code, body, 200)
	code, body = e.postJSON(t, "/resources/get/models", tok, getBody("m.small", pilotPass, hardware))
	wantCode(t, "first hardware after reset", code, body, 409)

	// The other user is not bound by the pilot's binding.
	tok2 := e.login(t, otherEmail, otherPass)
	code, body = e.postJSON(t, "/resources/get/models", tok2, getBody("m.small", otherPass, hardware))
	wantCode(t, "other user", code, body, 200)
	plain, err := resources.Decrypt(resources.APIKey(otherEmail, otherPass, hardware), body)
	if err != nil || string(plain) != "model" {
		t.Fatalf("other user's answer decrypts to %q, %v", plain, err)
	}
}

func TestCDNYAMLInEmptyFolder(t *testing.T) {
	cdn := []byte("host: http://127.0.0.1:9000\nbucket: azaion\n")
	e := newEnv(t, func(c *refapi.Config) {
		c.Files = []refapi.File{{Folder: "", Name: "cdn.yaml", Data: cdn}}
	})
	tok := e.login(t, pilotEmail, pilotPass)
	code, body := e.postJSON(t, "/resources/get/", tok, getBody("cdn.yaml", pilotPass, hardware))
	wantCode(t, "get cdn.yaml", code, body, 200)
	plain, err := resources.Decrypt(goldenKey, body)
	if err != nil || !bytes.Equal(plain, cdn) {
		t.Fatalf("cdn.yaml decrypts to %q, %v", plain, err)
	}
	if err := e.srv.Put("", "other.yaml", cdn); err == nil {
		t.Fatal("Put of other.yaml in the empty folder succeeded")
	}
}

func TestKeyFragment(t *testing.T) {
	e := newEnv(t, nil)
	code, body := e.do(t, http.MethodGet, "/binary-split/key-fragment", "", "", nil)
	wantCode(t, "no token", code, body, 401)
	tok := e.login(t, otherEmail, otherPass)
	code, body = e.do(t, http.MethodGet, "/binary-split/key-fragment", "", tok, nil)
	if code != 200 || string(body) != "fragment-bytes\x00\xff" {
		t.Fatalf("key fragment: %d %q", code, body)
	}
	got := e.srv.Requests()
	if got[refapi.RouteKeyFragment] != 2 || got[refapi.RouteLogin] != 1 || got[refapi.RouteGet] != 0 {
		t.Fatalf("Requests() = %v", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := []refapi.Config{
		{DataDir: ""},
		{DataDir: dir, Users: []refapi.User{{ID: "1", Email: "a@b", Password: ""}}},
		{DataDir: dir, Users: []refapi.User{{ID: "1", Email: "a@b", Password: "p"}, {ID: "2", Email: " A@B", Password: "q"}}},
		{DataDir: dir, Files: []refapi.File{{Folder: "..", Name: "x", Data: nil}}},
	}
	for i, cfg := range bad {
		if _, err := refapi.New(cfg); err == nil {
			t.Fatalf("config %d accepted", i)
		}
	}
}
