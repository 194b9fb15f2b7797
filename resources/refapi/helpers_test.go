package refapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

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

var signingKey = []byte("test-signing-key-0123456789abcdef")

// clock is a settable time for the server's Now hook.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	srv   *refapi.Server
	url   string
	root  string // parent of the data dir: nothing may appear here but "data"
	data  string
	clock *clock
}

func newEnv(t *testing.T, edit func(*refapi.Config)) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{root: root, data: filepath.Join(root, "data"), clock: &clock{t: time.Unix(1_800_000_000, 0)}}
	cfg := refapi.Config{
		Users: []refapi.User{
			{ID: "u-1", Email: pilotEmail, Password: pilotPass, Role: "operator"},
			{ID: "u-2", Email: otherEmail, Password: otherPass, Role: "viewer"},
		},
		DataDir:     e.data,
		SigningKey:  signingKey,
		TokenTTL:    time.Hour,
		KeyFragment: []byte("fragment-bytes\x00\xff"),
		MaxUpload:   1 << 20,
		Now:         e.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := refapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.srv, e.url = srv, ts.URL
	return e
}

// do sends a raw request and returns the status and body.
func (e *env) do(t *testing.T, method, path, contentType, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("request %s: %v", path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, b
}

func (e *env) postJSON(t *testing.T, path, token string, v any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return e.do(t, http.MethodPost, path, "application/json", token, b)
}

func (e *env) login(t *testing.T, email, password string) string {
	t.Helper()
	code, body := e.postJSON(t, "/login", "", map[string]string{"email": email, "password": password})
	if code != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, code, body)
	}
	var ans struct{ Token string }
	if err := json.Unmarshal(body, &ans); err != nil || ans.Token == "" {
		t.Fatalf("login answer %s: %v", body, err)
	}
	return ans.Token
}

func getBody(name, password, hw string) map[string]string {
	return map[string]string{"fileName": name, "password": password, "hardware": hw}
}

// multipartBody builds a body with the given parts: field name, filename
// (as sent, unescaped) and content.
func multipartBody(t *testing.T, parts ...[3]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := make(map[string][]string)
		cd := `form-data; name="` + p[0] + `"`
		if p[1] != "\x00nofile" {
			cd += `; filename="` + p[1] + `"`
		}
		h["Content-Disposition"] = []string{cd}
		h["Content-Type"] = []string{"application/octet-stream"}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, p[2]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

// tree lists every path under dir, relative, sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func wantTree(t *testing.T, dir string, want ...string) {
	t.Helper()
	sort.Strings(want)
	got := tree(t, dir)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("files under %s:\n got %q\nwant %q", dir, got, want)
	}
}

func wantCode(t *testing.T, what string, code int, body []byte, want int) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: status %d (%s), want %d", what, code, body, want)
	}
	if want >= 400 {
		var m struct {
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Message == nil || *m.Message == "" {
			t.Fatalf("%s: error body %q is not {\"message\": ...}", what, body)
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
