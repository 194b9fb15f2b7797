package refapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/refapi"
)

// badFolders are folder path segments that must all be 400, as sent on the
// wire (already escaped).
var badFolders = []string{
	"..", "%2e%2e", "%2E%2E", ".", "%2e", ".hidden", "a/b", "a%2Fb", "a%2fb", "..%2Fdata", "%2e%2e%2f%2e%2e",
	"x%00y", "%00", "%2Fetc", "%2F", "a%5Cb", "a%20b", "a:b", "..%5C..", strings.Repeat("a", 256),
	"../x", "a/b/c",
}

var badNames = []string{
	"..", ".", "../evil", "../../evil", "a/b", "/etc/passwd", "/abs", "x\x00y", "\x00", ".hidden", "a\\b",
	"a b", "", strings.Repeat("n", 256), "é", "a%2Fb",
}

func TestGetRefusesTraversal(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.srv.Put("models", "m.small", []byte("model")); err != nil {
		t.Fatal(err)
	}
	tok := e.login(t, pilotEmail, pilotPass)
	for _, f := range badFolders {
		code, body := e.postJSON(t, "/resources/get/"+f, tok, getBody("m.small", pilotPass, hardware))
		wantCode(t, "get folder "+f, code, body, 400)
	}
	for _, n := range badNames {
		code, body := e.postJSON(t, "/resources/get/models", tok, getBody(n, pilotPass, hardware))
		wantCode(t, "get name "+n, code, body, 400)
	}
	// An escaped letter is the letter: %6Dodels is models.
	code, body := e.postJSON(t, "/resources/get/%6Dodels", tok, getBody("m.small", pilotPass, hardware))
	wantCode(t, "escaped letter", code, body, 200)
	wantTree(t, e.root, "data", "data/models", "data/models/m.small")
}

func TestUploadThenGet(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.login(t, pilotEmail, pilotPass)
	data := bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 1000)
	ct, body := multipartBody(t, [3]string{"data", "yolo.onnx.small", string(data)})
	code, ans := e.do(t, http.MethodPost, "/resources/models", ct, tok, body)
	if code != 200 || strings.TrimSpace(string(ans)) != "{}" {
		t.Fatalf("upload: %d %q", code, ans)
	}
	if got := readFile(t, e.data+"/models/yolo.onnx.small"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want the %d uploaded", len(got), len(data))
	}
	code, enc := e.postJSON(t, "/resources/get/models", tok, getBody("yolo.onnx.small", pilotPass, hardware))
	wantCode(t, "get uploaded", code, enc, 200)
	plain, err := resources.Decrypt(goldenKey, enc)
	if err != nil || !bytes.Equal(plain, data) {
		t.Fatalf("get decrypts to %d bytes, %v", len(plain), err)
	}
	// A second upload replaces the file; cdn.yaml may go to the empty folder.
	ct, body = multipartBody(t, [3]string{"data", "yolo.onnx.small", "v2"})
	code, ans = e.do(t, http.MethodPost, "/resources/models", ct, tok, body)
	wantCode(t, "replace", code, ans, 200)
	ct, body = multipartBody(t, [3]string{"data", "cdn.yaml", "host: http://127.0.0.1:1\n"})
	code, ans = e.do(t, http.MethodPost, "/resources/", ct, tok, body)
	wantCode(t, "cdn.yaml", code, ans, 200)
	if got := readFile(t, e.data+"/models/yolo.onnx.small"); string(got) != "v2" {
		t.Fatalf("after replace: %q", got)
	}
	wantTree(t, e.root, "data", "data/models", "data/models/yolo.onnx.small", "data/.root", "data/.root/cdn.yaml")
}

func TestUploadRefusals(t *testing.T) {
	e := newEnv(t, func(c *refapi.Config) { c.UploadRoles = []string{"operator"} })
	tok := e.login(t, pilotEmail, pilotPass)
	ok := [3]string{"data", "m.small", "payload"}
	okCT, okBody := multipartBody(t, ok)

	code, body := e.do(t, http.MethodPost, "/resources/models", okCT, "", okBody)
	wantCode(t, "no token", code, body, 401)
	viewer := e.login(t, otherEmail, otherPass)
	code, body = e.do(t, http.MethodPost, "/resources/models", okCT, viewer, okBody)
	wantCode(t, "role not allowed", code, body, 403)

	for _, f := range badFolders {
		code, body := e.do(t, http.MethodPost, "/resources/"+f, okCT, tok, okBody)
		wantCode(t, "upload folder "+f, code, body, 400)
	}
	for _, n := range badNames {
		if strings.ContainsAny(n, "\"\\") {
			continue // cannot be sent inside a quoted filename as is
		}
		ct, b := multipartBody(t, [3]string{"data", n, "evil"})
		code, body := e.do(t, http.MethodPost, "/resources/models", ct, tok, b)
		wantCode(t, "upload name "+n, code, body, 400)
	}
	// The name as escaped by mime/multipart is read back as sent: a\b, not b.
	{
		ct, b := multipartBody(t, [3]string{"data", `a\\b`, "evil"})
		code, body := e.do(t, http.MethodPost, "/resources/models", ct, tok, b)
		wantCode(t, `upload name a\b`, code, body, 400)
	}
	twoCT, two := multipartBody(t, ok, [3]string{"data", "n.small", "x"})
	extraCT, extra := multipartBody(t, ok, [3]string{"folder", "\x00nofile", "models"})
	otherCT, other := multipartBody(t, [3]string{"file", "m.small", "x"})
	noFileCT, noFile := multipartBody(t, [3]string{"data", "\x00nofile", "x"})
	emptyCT, empty := multipartBody(t)
	bigCT, big := multipartBody(t, [3]string{"data", "big.small", strings.Repeat("b", 1<<20+1)})
	cases := []struct {
		name, ct string
		body     []byte
		want     int
	}{
		{"json", "application/json", []byte(`{}`), 400},
		{"no boundary", "multipart/form-data", okBody, 400},
		{"wrong boundary", "multipart/form-data; boundary=nope", okBody, 400},
		{"truncated", okCT, okBody[:len(okBody)-20], 400},
		{"cut inside the part", okCT, okBody[:len(okBody)/2], 400},
		{"two data parts", twoCT, two, 400},
		{"an extra field", extraCT, extra, 400},
		{"part named file", otherCT, other, 400},
		{"data without filename", noFileCT, noFile, 400},
		{"no parts", emptyCT, empty, 400},
		{"empty folder, not cdn.yaml", okCT, okBody, 400},
		{"over MaxUpload", bigCT, big, 413},
	}
	for _, tc := range cases {
		path := "/resources/models"
		if tc.name == "empty folder, not cdn.yaml" {
			path = "/resources/"
		}
		code, body := e.do(t, http.MethodPost, path, tc.ct, tok, tc.body)
		wantCode(t, tc.name, code, body, tc.want)
	}
	// Nothing was stored, no temporary file is left, the server still serves.
	wantTree(t, e.root, "data", "data/models")
	code, body = e.do(t, http.MethodPost, "/resources/models", okCT, tok, okBody)
	wantCode(t, "good upload after refusals", code, body, 200)
	wantTree(t, e.root, "data", "data/models", "data/models/m.small")
}
