package refapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSetDown: while the API is down every call ends at the connection,
// with no status and nothing stored; back up, it answers as before.
func TestSetDown(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, pilotEmail, pilotPass)
	e.srv.SetDown(true)
	c := &http.Client{Timeout: 10 * time.Second}
	ct, body := multipartBody(t, [3]string{"data", "m.small", "while down"})
	for _, tc := range []struct{ path, ct string }{
		{"/login", "application/json"},
		{"/resources/models", ct},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url+tc.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", tc.ct)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("POST %s while down: %d, want no answer", tc.path, resp.StatusCode)
		}
	}
	wantTree(t, e.root, "data")
	e.srv.SetDown(false)
	code, ans := e.do(t, http.MethodPost, "/resources/models", ct, tok, body)
	wantCode(t, "upload after the API is back", code, ans, 200)
	wantTree(t, e.root, "data", "data/models", "data/models/m.small")
}

// TestNameLengths: folders and names are 1..200 bytes (PROTOCOL §2); a
// stored file is a name with its suffix, so a 200-byte name's small part
// (206 bytes) is stored and served, and 201 bytes are a 400.
func TestNameLengths(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, pilotEmail, pilotPass)
	n200, f200 := strings.Repeat("n", 200), strings.Repeat("f", 200)
	ct, body := multipartBody(t, [3]string{"data", n200 + ".small", "small part"})
	code, ans := e.do(t, http.MethodPost, "/resources/"+f200, ct, tok, body)
	wantCode(t, "200-byte folder and name", code, ans, 200)
	code, ans = e.postJSON(t, "/resources/get/"+f200, tok, getBody(n200+".small", pilotPass, hardware))
	wantCode(t, "get it back", code, ans, 200)
	code, ans = e.do(t, http.MethodPost, "/resources/"+f200+"f", ct, tok, body)
	wantCode(t, "201-byte folder", code, ans, 400)
	code, ans = e.postJSON(t, "/resources/get/"+f200+"f", tok, getBody(n200+".small", pilotPass, hardware))
	wantCode(t, "get from a 201-byte folder", code, ans, 400)
}
