package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

// syncBuf is a log sink shared by every part of a loader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretsNoPlaintextLeft runs a loader at debug level through login
// (wrong, then right), upload, load, mount reads, and failures (missing
// files, the CDN stalled, the Resource API down), keeping every log line,
// every HTTP answer and every error message. None holds the password, a
// token, the resource key, the API key, the key fragment or an S3 secret.
// The resources carry a marker; afterwards no file under the cache dir, the
// temp dir or the working dir holds it.
func TestNoSecretsNoPlaintextLeft(t *testing.T) {
	start := time.Now()
	s := newStack(t, testbed.Options{ProxyCDN: true, ProxyAPI: true})
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cacheDir := filepath.Join(t.TempDir(), "cache")
	store := s.bed.Store(t, testbed.StoreOptions{CacheDir: cacheDir, Timeout: 2 * time.Second, Logger: log})
	_, mnt := s.mount(t, store, Options{ReadTimeout: 2 * time.Second, Logger: log, Debug: true})
	ctl := httptest.NewServer(control.NewHandler(control.Config{Store: store, Logger: log}))
	t.Cleanup(ctl.Close)

	markerBytes := make([]byte, 12)
	rand.Read(markerBytes)
	marker := "AZAION-PLAINTEXT-MARKER-" + hex.EncodeToString(markerBytes)
	plain := bytes.Repeat([]byte(marker+"\n"), (3<<20)/len(marker))
	wrongPassword := "wrong-" + s.bed.Password
	secrets := map[string]string{
		"password":       s.bed.Password,
		"wrong password": wrongPassword,
		"resource key":   s.bed.ResourceKey,
		"API key":        resources.APIKey(s.bed.Email, s.bed.Password, s.bed.Hardware),
		"key fragment":   "fragment-", // testbed's fragments all start so
		"JWT":            "eyJ",       // every JWT's header starts so
		"S3 download":    s.bed.CDN.DownloaderAccessSecret,
		"S3 upload":      s.bed.CDN.UploaderAccessSecret,
	}
	var seen []string // answers and errors
	note := func(what string, err error) {
		if err != nil {
			seen = append(seen, what+": "+err.Error())
		}
	}
	post := func(path, ctype string, body io.Reader) int {
		resp, err := http.Post(ctl.URL+path, ctype, body)
		if err != nil {
			note("POST "+path, err)
			return 0
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(path, "/load/") || resp.StatusCode != 200 {
			seen = append(seen, "POST "+path+": "+string(b))
		}
		return resp.StatusCode
	}
	login := func(pw string) int {
		b, _ := json.Marshal(map[string]string{"email": s.bed.Email, "password": pw})
		return post("/login", "application/json", bytes.NewReader(b))
	}
	upload := func(name string, data []byte) int {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("folder", s.folder)
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(data)
		mw.Close()
		return post("/upload/"+name, mw.FormDataContentType(), &body)
	}
	load := func(name string) int {
		return post("/load/"+name, "application/json", strings.NewReader(`{"folder":"`+s.folder+`"}`))
	}
	readMount := func(name string) {
		b, err := os.ReadFile(filepath.Join(mnt, s.folder, name))
		note("read "+name, err)
		if err == nil && !bytes.Equal(b, plain) {
			t.Errorf("read %s through the mount: wrong bytes", name)
		}
	}

	if code := login(wrongPassword); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	readMount("before-login.bin") // locked
	if code := login(s.bed.Password); code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code := upload("a.bin", plain); code != 200 && code != 201 {
		t.Fatalf("upload: %d", code)
	}
	s.upload(t, nil, "b.bin", bytes.NewReader(plain))
	if code := load("a.bin"); code != 200 {
		t.Fatalf("load: %d", code)
	}
	readMount("a.bin")
	readMount("b.bin")
	if code := load("missing.bin"); code != 404 {
		t.Fatalf("load missing: %d", code)
	}
	readMount("missing.bin")
	// Failures: the CDN stalled, then the Resource API down.
	s.upload(t, nil, "c.bin", bytes.NewReader(plain))
	s.bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Stall})
	readMount("c.bin")
	// (A /load now would wait out cdn.Options.CallTimeout, 30 s: the mount's
	// read shows the failure's logs well enough.)
	s.bed.CDNProxy.Clear()
	s.bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Reset})
	readMount("c.bin")
	load("c.bin")
	login(s.bed.Password)
	s.bed.APIProxy.Clear()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := store.Open(ctx, s.folder, "../etc")
	cancel()
	note("open bad name", err)
	if err := store.Close(); err != nil {
		note("close", err)
	}

	all := logs.String() + "\n" + strings.Join(seen, "\n")
	if !strings.Contains(all, "level=DEBUG") || !strings.Contains(all, "a.bin") {
		t.Fatalf("the run logged too little to prove anything:\n%s", all)
	}
	for what, secret := range secrets {
		if secret == "" {
			t.Fatalf("no %s to look for", what)
		}
		if i := strings.Index(all, secret); i >= 0 {
			t.Errorf("the %s appears in the logs or errors: …%s…", what, all[max(0, i-200):i])
		}
	}
	t.Logf("%d bytes of logs and %d answers and errors checked", len(logs.String()), len(seen))

	// No plaintext at rest: the marker is in no file the loader could have
	// written (FUSE mounts, ours and other tests', are not walked).
	wd, _ := os.Getwd()
	for _, root := range []string{cacheDir, os.TempDir(), wd} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				var st syscall.Statfs_t
				if syscall.Statfs(path, &st) == nil && st.Type == 0x65735546 { // FUSE
					return filepath.SkipDir
				}
				return nil
			}
			fi, err := d.Info()
			if err != nil || !fi.Mode().IsRegular() || fi.Size() > 64<<20 || fi.ModTime().Before(start) {
				return nil
			}
			b, err := os.ReadFile(path)
			if err == nil && bytes.Contains(b, []byte(marker)) {
				t.Errorf("plaintext left at rest in %s", path)
			}
			return nil
		})
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the store hung on a bad name")
	}
}
