package control_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/testbed"
)

// rawRequest is a request written byte for byte on a TCP connection, so no
// client cleans its path or fixes its body.
type rawRequest struct {
	method, target, ctype, body string
	// declared is the Content-Length sent when it is not len(body): the
	// body then breaks off.
	declared int
}

func (q rawRequest) String() string { return q.method + " " + clip(q.target) + " " + clip(q.body) }

func clip(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q…(%d bytes)", s[:80], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// sendRaw writes q to addr and reads the answer.
func sendRaw(t *testing.T, addr string, q rawRequest) reply {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	n := len(q.body)
	if q.declared > 0 {
		n = q.declared
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", q.method, q.target, addr)
	if q.ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", q.ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", n, q.body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatalf("%v: write: %v", q, err)
	}
	if q.declared > 0 {
		c.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%v: no answer: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, body, resp.Header}
}

const boundary = "b0undary-7f3a"

// part is one part of a hand-built multipart body.
type part struct{ disposition, body string }

func multipartBody(parts ...part) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\r\nContent-Disposition: %s\r\n\r\n%s\r\n", boundary, p.disposition, p.body)
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.String()
}

func folderPart(folder string) part { return part{`form-data; name="folder"`, folder} }

func filePart(filename, body string) part {
	return part{fmt.Sprintf(`form-data; name="file"; filename="%s"`, filename), body}
}

const mpType = "multipart/form-data; boundary=" + boundary

// snapshot lists every file under the dirs with its size.
func snapshot(t *testing.T, dirs ...string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if fi, err := e.Info(); err == nil && !e.IsDir() {
				out[p] = fi.Size()
			}
			return nil
		})
	}
	return out
}

// TestBadInput sends every kind of bad request to every endpoint: each gets
// a 4xx with a JSON detail, no file appears or changes anywhere under the
// loader's or the Resource API's directories, nothing new lands on the CDN,
// and the server keeps serving.
func TestBadInput(t *testing.T) {
	bed := testbed.New(t, testbed.Options{}) // bucket per folder: folders must be bucket names too
	root := t.TempDir()
	l := newLoader(t, bed, testbed.StoreOptions{CacheDir: filepath.Join(root, "cache")}, control.Config{MaxUploadBytes: 1 << 20})
	l.loginOK(t)
	folder := bed.NewFolder(t)
	l.uploadOK(t, folder, "ok.bin", content(9, 1000))
	l.loadOK(t, folder, "ok.bin", 1000, sumOf(9, 1000))
	addr := strings.TrimPrefix(l.url, "http://")

	loadBody := `{"filename":"ok.bin","folder":"` + folder + `"}`
	goodUpload := multipartBody(folderPart(folder), filePart("ok.bin", "new content"))
	load := func(target string, code int) struct {
		q    rawRequest
		code int
	} {
		return struct {
			q    rawRequest
			code int
		}{rawRequest{"POST", target, "application/json", loadBody, 0}, code}
	}
	upload := func(target string, code int) struct {
		q    rawRequest
		code int
	} {
		return struct {
			q    rawRequest
			code int
		}{rawRequest{"POST", target, mpType, goodUpload, 0}, code}
	}
	type tc = struct {
		q    rawRequest
		code int
	}
	var cases []tc

	// Traversal and bad names in the URL of /load and /upload.
	for _, c := range []struct {
		name string
		code int
	}{
		{"..", 400}, {"%2e%2e", 400}, {"%2E%2E", 400}, {".", 400}, {".hidden", 400},
		{"a%2Fb", 400}, {"a%2fb", 400}, {"..%2F..%2Fetc%2Fpasswd", 400}, {"%2Fetc%2Fpasswd", 400},
		{"a%00b", 400}, {"%00", 400}, {"a%5Cb", 400}, {"a%20b", 400}, {strings.Repeat("n", 256), 400},
		{"a/b", 404}, {"../ok.bin", 404}, {"/etc/passwd", 404}, {"", 404},
	} {
		cases = append(cases, load("/load/"+c.name, c.code), upload("/upload/"+c.name, c.code))
	}
	// The same in the JSON body of /load, and in the body's filename.
	for _, f := range []string{"..", "../..", "%2e%2e", "a/b", "/etc", "/", "a\\u0000b", ".hidden", "", strings.Repeat("f", 256)} {
		cases = append(cases,
			tc{rawRequest{"POST", "/load/ok.bin", "application/json", `{"filename":"ok.bin","folder":"` + f + `"}`, 0}, 400},
			tc{rawRequest{"POST", "/load/ok.bin", "application/json", `{"filename":"` + f + `x/y","folder":"` + folder + `"}`, 400}, 400})
	}
	for _, f := range []string{"../ok.bin", "/etc/passwd", "a/b", "..", "a\\u0000b"} {
		cases = append(cases, tc{rawRequest{"POST", "/load/ok.bin", "application/json", `{"filename":"` + f + `","folder":"` + folder + `"}`, 0}, 400})
	}
	// Malformed, truncated, missing fields, wrong type, wrong content type,
	// oversized: on /load and /login.
	big := `{"folder":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, path := range []string{"/load/ok.bin", "/login"} {
		missing := 422
		cases = append(cases,
			tc{rawRequest{"POST", path, "application/json", `{"folder":`, 0}, 400},
			tc{rawRequest{"POST", path, "application/json", `not json`, 0}, 400},
			tc{rawRequest{"POST", path, "application/json", ``, 0}, 400},
			tc{rawRequest{"POST", path, "application/json", `[]`, 0}, 400},
			tc{rawRequest{"POST", path, "application/json", `{"folder":1,"email":2}`, 0}, 400},
			tc{rawRequest{"POST", path, "application/json", `{} {}`, 0}, 400},
			tc{rawRequest{"POST", path, "application/json", `{}`, 0}, missing},
			tc{rawRequest{"POST", path, "application/json", `null`, 0}, missing},
			tc{rawRequest{"POST", path, "text/plain", loadBody, 0}, 415},
			tc{rawRequest{"POST", path, "application/x-www-form-urlencoded", "folder=" + folder, 0}, 415},
			tc{rawRequest{"POST", path, "application/json", big, 0}, 413},
			tc{rawRequest{"POST", path, "application/json", `{"folder":"` + folder + `",`, 4000}, 400},
		)
	}
	cases = append(cases,
		tc{rawRequest{"POST", "/login", "application/json", `{"email":"` + bed.Email + `"}`, 0}, 422},
		tc{rawRequest{"POST", "/login", "application/json", `{"email":"","password":"x"}`, 0}, 422},
		tc{rawRequest{"POST", "/login", "application/json", `{"password":"x"}`, 0}, 422},
	)
	// Upload: the multipart filename, the folder field, the body's shape
	// and size.
	for _, fn := range []string{"../evil.bin", "../../evil.bin", "/tmp/evil.bin", "a/b", "..", ".hidden", "a%2Fb", `a\b`} {
		cases = append(cases, tc{rawRequest{"POST", "/upload/ok.bin", mpType, multipartBody(folderPart(folder), filePart(fn, "evil")), 0}, 400})
	}
	cases = append(cases, tc{rawRequest{"POST", "/upload/ok.bin", mpType, multipartBody(folderPart(folder),
		part{`form-data; name="file"; filename*=UTF-8''..%2F..%2Fevil.bin`, "evil"}), 0}, 400})
	for _, f := range []string{"..", "../..", "a/b", "/tmp", "%2e%2e", "a\x00b", ".hidden", "Not_A_Bucket", strings.Repeat("f", 300), ""} {
		cases = append(cases, tc{rawRequest{"POST", "/upload/ok.bin", mpType, multipartBody(folderPart(f), filePart("ok.bin", "evil")), 0}, 400})
	}
	cases = append(cases,
		tc{rawRequest{"POST", "/upload/ok.bin", "application/json", loadBody, 0}, 400},
		tc{rawRequest{"POST", "/upload/ok.bin", "multipart/form-data", goodUpload, 0}, 400},
		tc{rawRequest{"POST", "/upload/ok.bin", "", goodUpload, 0}, 400},
		tc{rawRequest{"POST", "/upload/ok.bin", mpType, multipartBody(filePart("ok.bin", "x"), folderPart(folder)), 0}, 400},
		tc{rawRequest{"POST", "/upload/ok.bin", mpType, multipartBody(folderPart(folder)), 0}, 422},
		tc{rawRequest{"POST", "/upload/ok.bin", mpType, "", 0}, 400},
		tc{rawRequest{"POST", "/upload/ok.bin", mpType, "garbage", 0}, 400},
		// Truncated: the body ends inside the file part.
		tc{rawRequest{"POST", "/upload/ok.bin", mpType, strings.TrimSuffix(goodUpload, "--"+boundary+"--\r\n"), 0}, 400},
		tc{rawRequest{"POST", "/upload/ok.bin", mpType, goodUpload[:len(goodUpload)-30], 1 << 16}, 400},
		// Over MaxUploadBytes.
		tc{rawRequest{"POST", "/upload/ok.bin", mpType, multipartBody(folderPart(folder), filePart("ok.bin", strings.Repeat("z", 2<<20))), 0}, 413},
		// Wrong methods and unknown paths.
		tc{rawRequest{"GET", "/load/ok.bin", "", "", 0}, 405},
		tc{rawRequest{"GET", "/upload/ok.bin", "", "", 0}, 405},
		tc{rawRequest{"GET", "/login", "", "", 0}, 405},
		tc{rawRequest{"POST", "/health", "", "", 0}, 405},
		tc{rawRequest{"POST", "/status", "", "", 0}, 405},
		tc{rawRequest{"GET", "/nope", "", "", 0}, 404},
		tc{rawRequest{"GET", "/../../etc/passwd", "", "", 0}, 404},
	)

	listCDN := func() []string {
		var keys []string
		out, err := bed.MinIO.Root().ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: &folder})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			keys = append(keys, *o.Key+fmt.Sprint(*o.Size))
		}
		buckets, err := bed.MinIO.Root().ListBuckets(ctx(t), &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return append(keys, fmt.Sprint(len(buckets.Buckets), " buckets"))
	}
	before, cdnBefore := snapshot(t, root, bed.DataDir), listCDN()
	for _, c := range cases {
		r := sendRaw(t, addr, c.q)
		if r.code != c.code || r.detail() == "" {
			t.Errorf("%v: %v, want %d with a JSON detail", c.q, r, c.code)
		}
		if h := l.get(t, "/health"); h.code != 200 {
			t.Fatalf("/health after %v: %v", c.q, h)
		}
		if after := snapshot(t, root, bed.DataDir); !mapsEqual(before, after) {
			t.Fatalf("%v changed files: before %v, after %v", c.q, before, after)
		}
	}
	if after := listCDN(); !slices.Equal(cdnBefore, after) {
		t.Fatalf("bad requests changed the CDN: %v, then %v", cdnBefore, after)
	}
	for _, p := range []string{"/tmp/evil.bin", filepath.Join(root, "evil.bin"), filepath.Join(filepath.Dir(root), "evil.bin")} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s was written", p)
		}
	}
	// The good resource is untouched and the loader still works.
	l.loadOK(t, folder, "ok.bin", 1000, sumOf(9, 1000))
	var st struct{ Authenticated bool }
	if r := l.get(t, "/status"); json.Unmarshal(r.body, &st) != nil || !st.Authenticated {
		t.Fatalf("/status after bad requests: %v", r)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
