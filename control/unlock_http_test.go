package control_test

// Unlock through the control API (PROTOCOL §5, §6; flows F4, F5): a real
// unlock.Task whose Resource API client is a real api.Client talking to the
// reference Resource API, and a private Docker engine (dockertest, shared
// by this package's unlock tests and started by the first of them).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/control/unlock"
	"github.com/azaion/loader/control/unlock/dockertest"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/cache"
	"github.com/azaion/loader/resources/refapi"
)

const (
	unlockEmail    = "unlock-operator@azaion.example"
	unlockPassword = "Unl0ck-correct-horse-battery"
)

// unlockFragment is what the reference API serves and what the archives are
// sealed with, unless a test says otherwise.
var unlockFragment = []byte("unlock-key-fragment-5e1f0c3a9b7d2e48")

// unlockImages are built once in the shared engine, saved, and removed.
var unlockImages struct {
	once sync.Once
	refs []string
	ids  map[string]string // ref → ID as docker import gave it
	tar  []byte            // docker save of refs
}

// unlockEngine returns the shared engine with the test images saved and
// absent; they are absent again when t ends.
func unlockEngine(t *testing.T) *dockertest.Engine {
	t.Helper()
	e := dockertest.Shared(t)
	unlockImages.once.Do(func() {
		unlockImages.refs = []string{"azaion-http/alpha:1", "azaion-http/beta:1"}
		unlockImages.ids = map[string]string{}
		for _, ref := range unlockImages.refs {
			unlockImages.ids[ref] = e.BuildImage(t, ref)
		}
		unlockImages.tar = e.Save(t, unlockImages.refs...)
	})
	if unlockImages.tar == nil {
		t.Fatal("the test images were not built")
	}
	removeAll := func() {
		for _, ref := range unlockImages.refs {
			e.Remove(t, ref)
		}
	}
	removeAll()
	t.Cleanup(removeAll)
	return e
}

// unlockBed is a control API with a real unlock task over the reference
// Resource API.
type unlockBed struct {
	t       *testing.T
	api     *refapi.Server
	url     string // the control API
	task    *unlock.Task
	logs    *unlockLog
	tmpDir  string // the test's TMPDIR
	archive string // images_path; its directory is the test's own
	bodies  []string
}

type unlockBedOptions struct {
	fragment []byte // the reference API's key fragment; unlockFragment when nil
	archive  []byte // written at images_path when not nil
	path     string // images_path instead of <dir>/images.enc
	docker   string // the docker CLI; "docker" when empty
	gate     chan struct{}
}

func newUnlockBed(t *testing.T, o unlockBedOptions) *unlockBed {
	t.Helper()
	b := &unlockBed{t: t, logs: &unlockLog{}, tmpDir: t.TempDir()}
	archiveDir := t.TempDir()
	// Nothing of the loader may land in TMPDIR: point it at an empty
	// directory that the test then watches.
	t.Setenv("TMPDIR", b.tmpDir)
	log := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	fragment := o.fragment
	if fragment == nil {
		fragment = unlockFragment
	}
	srv, err := refapi.New(refapi.Config{
		Users:       []refapi.User{{ID: "u-unlock", Email: unlockEmail, Password: unlockPassword, Role: "operator"}},
		DataDir:     filepath.Join(archiveDir, "refapi"),
		KeyFragment: fragment,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	b.api = srv
	var h http.Handler = srv.Handler()
	if o.gate != nil {
		h = unlockGateLogin(h, o.gate)
	}
	apiSrv := httptest.NewServer(h)
	t.Cleanup(apiSrv.Close)

	b.archive = o.path
	if b.archive == "" {
		b.archive = filepath.Join(archiveDir, "images.enc")
	}
	if o.archive != nil {
		if err := os.WriteFile(b.archive, o.archive, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b.task = unlock.New(unlock.Config{
		ArchivePath: b.archive,
		Images:      unlockImages.refs,
		Docker:      o.docker,
		NewClient: func() unlock.KeyClient {
			c, err := api.New(apiSrv.URL, api.Options{Timeout: 20 * time.Second, Logger: log})
			if err != nil {
				panic(err) // an httptest URL
			}
			return c
		},
		Logger:      log,
		StepTimeout: 20 * time.Second,
		LoadTimeout: 2 * time.Minute,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.task.Close(ctx); err != nil {
			t.Errorf("close the unlock task: %v", err)
		}
	})

	c, err := cache.Open(filepath.Join(archiveDir, "cache"), cache.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	client, err := api.New(apiSrv.URL, api.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	store := resources.NewStore(resources.StoreConfig{API: client, Cache: c, ResourceKey: "unused", Hardware: "unlock-test", Logger: log})
	t.Cleanup(func() { store.Close() })
	ctl := httptest.NewServer(control.NewHandler(control.Config{Store: store, Unlock: b.task, Logger: log}))
	t.Cleanup(ctl.Close)
	b.url = ctl.URL
	return b
}

// unlockGateLogin holds POST /login until gate closes (or the request ends).
func unlockGateLogin(next http.Handler, gate chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/login" {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// unlockReply is an answer of the control API.
type unlockReply struct {
	code int
	ct   string
	body []byte
}

func (r unlockReply) String() string { return fmt.Sprintf("%d %s", r.code, bytes.TrimSpace(r.body)) }

var unlockClient = &http.Client{Timeout: time.Minute}

// call sends one request and keeps the body for the secrets check.
func (b *unlockBed) call(method, path, contentType, body string) unlockReply {
	b.t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := unlockClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: read the body: %v", method, path, err)
	}
	b.bodies = append(b.bodies, string(data))
	return unlockReply{code: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: data}
}

func (b *unlockBed) post(email, password string) unlockReply {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return b.call(http.MethodPost, "/unlock", "application/json", string(body))
}

// status is GET /unlock/status, checked to be 200 JSON with exactly the
// fields of the status.
func (b *unlockBed) status() unlock.Status {
	b.t.Helper()
	r := b.call(http.MethodGet, "/unlock/status", "", "")
	return unlockDecodeStatus(b.t, r)
}

func unlockDecodeStatus(t *testing.T, r unlockReply) unlock.Status {
	t.Helper()
	if r.code != http.StatusOK || r.ct != "application/json" {
		t.Fatalf("status answer %v (Content-Type %q), want 200 JSON", r, r.ct)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &fields); err != nil {
		t.Fatalf("status %s: %v", r.body, err)
	}
	want := []string{"bytes_decrypted", "bytes_total", "error", "state", "step"}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		t.Fatalf("status fields %v, want %v: %s", got, want, r.body)
	}
	var st unlock.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("status %s: %v", r.body, err)
	}
	if (st.State == unlock.StateError) != (st.Error != nil) || (st.Error == nil) != (string(fields["error"]) == "null") {
		t.Fatalf("status %s: error must be a string exactly when the state is error, else null", r.body)
	}
	return st
}

// wait polls GET /unlock/status until the task is ready or failed, for at
// most three minutes.
func (b *unlockBed) wait() unlock.Status {
	b.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := b.status()
		if st.State == unlock.StateReady || st.State == unlock.StateError {
			return st
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("unlock still %+v after 3 minutes", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *unlockBed) calls() (logins, fragments int) {
	n := b.api.Requests()
	return n[refapi.RouteLogin], n[refapi.RouteKeyFragment]
}

// noSecrets checks the logs and every answer for the passwords, the
// fragments and their keys.
func (b *unlockBed) noSecrets(passwords []string, fragments ...[]byte) {
	b.t.Helper()
	texts := map[string]string{"the log": b.logs.String()}
	for i, body := range b.bodies {
		texts[fmt.Sprintf("answer %d", i)] = body
	}
	secrets := map[string]string{}
	for i, p := range passwords {
		secrets["password "+strconv.Itoa(i)] = p
	}
	for i, f := range fragments {
		key := resources.AESKey(string(f))
		for name, s := range map[string]string{
			"fragment": string(f), "fragment hex": hex.EncodeToString(f), "fragment base64": base64.StdEncoding.EncodeToString(f),
			"key": string(key), "key hex": hex.EncodeToString(key), "key base64": base64.StdEncoding.EncodeToString(key),
		} {
			secrets[fmt.Sprintf("%s %d", name, i)] = s
		}
	}
	for what, text := range texts {
		for name, s := range secrets {
			if strings.Contains(text, s) {
				b.t.Errorf("%s contains the %s:\n%s", what, name, text)
			}
		}
	}
}

// unlockLog collects the loader's log lines from several goroutines.
type unlockLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *unlockLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *unlockLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func unlockSeal(t *testing.T, plain, fragment []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := unlock.Seal(&buf, bytes.NewReader(plain), fragment, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func unlockListDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// unlockDockerChildren lists the test binary's child processes named docker: a
// docker load the task did not stop and wait for.
func unlockDockerChildren(t *testing.T) []string {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	var found []string
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.HasSuffix(s[:i+1], " (docker)") {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == me {
			found = append(found, strings.TrimSpace(s[:i+1]))
		}
	}
	return found
}

// unlockAssertNoneLoaded checks for a second, so that a late commit would show,
// that no test image is loaded.
func unlockAssertNoneLoaded(t *testing.T, e *dockertest.Engine) {
	t.Helper()
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		for _, ref := range unlockImages.refs {
			if id, ok := e.Inspect(ref); ok {
				t.Fatalf("image %s was loaded (%s)", ref, id)
			}
		}
	}
}

func TestUnlockHTTPLoadsImages(t *testing.T) {
	e := unlockEngine(t)
	archive := unlockSeal(t, unlockImages.tar, unlockFragment)
	b := newUnlockBed(t, unlockBedOptions{archive: archive})
	beforeArchive := unlockListDir(t, filepath.Dir(b.archive))

	if st := b.status(); st != (unlock.Status{State: unlock.StateIdle}) {
		t.Fatalf("before: %+v, want idle", st)
	}
	r := b.post(unlockEmail, unlockPassword)
	if want := `{"state":"authenticating","error":null,"step":"","bytes_decrypted":0,"bytes_total":0}`; r.code != http.StatusOK || r.ct != "application/json" || string(bytes.TrimSpace(r.body)) != want {
		t.Fatalf("POST /unlock = %v, want 200 %s", r, want)
	}
	size := int64(len(archive))
	if st := b.wait(); st != (unlock.Status{State: unlock.StateReady, BytesDone: size, BytesTotal: size}) {
		t.Fatalf("end: %+v, want ready with %d of %d bytes", st, size, size)
	}
	for _, ref := range unlockImages.refs {
		if id, ok := e.Inspect(ref); !ok || id != unlockImages.ids[ref] {
			t.Errorf("image %s loaded as %q (%v), want the original %s", ref, id, ok, unlockImages.ids[ref])
		}
	}
	if l, f := b.calls(); l != 1 || f != 1 {
		t.Errorf("Resource API logins/fragments = %d/%d, want 1/1", l, f)
	}
	// Ready: another /unlock answers ready and starts nothing.
	r = b.post(unlockEmail, unlockPassword)
	if st := unlockDecodeStatus(t, r); st.State != unlock.StateReady {
		t.Errorf("POST /unlock when ready = %v", r)
	}
	if l, _ := b.calls(); l != 1 {
		t.Errorf("POST /unlock when ready logged in again (%d logins)", l)
	}
	if got := unlockListDir(t, b.tmpDir); len(got) != 0 {
		t.Errorf("TMPDIR holds %v", got)
	}
	if got := unlockListDir(t, filepath.Dir(b.archive)); !slices.Equal(got, beforeArchive) {
		t.Errorf("the archive's directory holds %v, was %v", got, beforeArchive)
	}
	b.noSecrets([]string{unlockPassword}, unlockFragment)
}

func TestUnlockHTTPAlreadyLoaded(t *testing.T) {
	e := unlockEngine(t)
	e.Load(t, unlockImages.tar)
	for name, o := range map[string]unlockBedOptions{
		"archive missing": {},
		// Opening a directory as the archive would fail the task.
		"archive unreadable": {path: t.TempDir()},
		// Decrypting it would fail the task.
		"archive garbage": {archive: bytes.Repeat([]byte("not an archive!\n"), 64)},
	} {
		t.Run(name, func(t *testing.T) {
			b := newUnlockBed(t, o)
			r := b.post(unlockEmail, "wrong password: must not be used")
			if want := `{"state":"ready","error":null,"step":"","bytes_decrypted":0,"bytes_total":0}`; r.code != http.StatusOK || string(bytes.TrimSpace(r.body)) != want {
				t.Fatalf("POST /unlock = %v, want 200 %s", r, want)
			}
			if st := b.status(); st.State != unlock.StateReady {
				t.Fatalf("status %+v, want ready", st)
			}
			if n := b.api.Requests(); len(n) != 0 {
				t.Errorf("the Resource API was called: %v", n)
			}
			for _, ref := range unlockImages.refs {
				if id, _ := e.Inspect(ref); id != unlockImages.ids[ref] {
					t.Errorf("image %s is %q, want %s", ref, id, unlockImages.ids[ref])
				}
			}
		})
	}
}

func TestUnlockHTTPArchiveMissing(t *testing.T) {
	unlockEngine(t)
	b := newUnlockBed(t, unlockBedOptions{})
	r := b.post(unlockEmail, unlockPassword)
	var body map[string]string
	if r.code != http.StatusNotFound || r.ct != "application/json" || json.Unmarshal(r.body, &body) != nil || len(body) != 1 {
		t.Fatalf("POST /unlock = %v (Content-Type %q), want 404 JSON {\"detail\"}", r, r.ct)
	}
	if want := "image archive missing and images not loaded: " + b.archive; body["detail"] != want {
		t.Errorf("detail %q, want %q", body["detail"], want)
	}
	if st := b.status(); st != (unlock.Status{State: unlock.StateIdle}) {
		t.Errorf("status %+v, want idle", st)
	}
	if n := b.api.Requests(); len(n) != 0 {
		t.Errorf("the Resource API was called: %v", n)
	}
}

// unlockWrongFragment returns a fragment other than unlockFragment whose key
// fails the padding check of archive's last block, so that the test does not
// hang on the 1-in-256 chance of a random block padding validly.
func unlockWrongFragment(t *testing.T, archive []byte) []byte {
	t.Helper()
	for i := 0; i < 100; i++ {
		f := []byte(fmt.Sprintf("wrong-fragment-%d-77ab12cd34ef", i))
		if _, err := resources.Decrypt(string(f), archive[len(archive)-32:]); err != nil {
			return f
		}
	}
	t.Fatal("no wrong fragment found")
	return nil
}

func TestUnlockHTTPFailures(t *testing.T) {
	cases := []struct {
		name     string
		opts     func(t *testing.T) unlockBedOptions
		password string
		step     unlock.State
		msg      string // the error starts with step + ": " + msg
	}{
		{"wrong fragment", func(t *testing.T) unlockBedOptions {
			a := unlockSeal(t, unlockImages.tar, unlockFragment)
			return unlockBedOptions{archive: a, fragment: unlockWrongFragment(t, a)}
		}, unlockPassword, unlock.StateDecrypting, "the archive does not decrypt with this key fragment"},
		{"truncated mid-block", func(t *testing.T) unlockBedOptions {
			a := unlockSeal(t, unlockImages.tar, unlockFragment)
			return unlockBedOptions{archive: a[:len(a)-7]}
		}, unlockPassword, unlock.StateDecrypting, "the archive is truncated or damaged"},
		{"truncated at a block boundary", func(t *testing.T) unlockBedOptions {
			// The tar ends in zero blocks: the new last block decrypts to
			// zeros, an invalid padding.
			a := unlockSeal(t, unlockImages.tar, unlockFragment)
			return unlockBedOptions{archive: a[:len(a)-48]}
		}, unlockPassword, unlock.StateDecrypting, "the archive does not decrypt with this key fragment"},
		{"bad credentials", func(t *testing.T) unlockBedOptions {
			return unlockBedOptions{archive: unlockSeal(t, unlockImages.tar, unlockFragment)}
		}, "Wrong-" + unlockPassword, unlock.StateAuthenticating, "log in to the Resource API: "},
		{"docker CLI missing", func(t *testing.T) unlockBedOptions {
			return unlockBedOptions{archive: unlockSeal(t, unlockImages.tar, unlockFragment), docker: "/nonexistent/docker"}
		}, unlockPassword, unlock.StateLoadingImages, "start docker load: "},
		{"docker load fails", func(t *testing.T) unlockBedOptions {
			plain := bytes.Repeat([]byte("this is not a docker save tar\n"), 1000)
			return unlockBedOptions{archive: unlockSeal(t, plain, unlockFragment)}
		}, unlockPassword, unlock.StateLoadingImages, "docker load failed: exit status 1: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := unlockEngine(t)
			o := tc.opts(t)
			b := newUnlockBed(t, o)
			archiveDir := filepath.Dir(b.archive)
			before := unlockListDir(t, archiveDir)

			if r := b.post(unlockEmail, tc.password); r.code != http.StatusOK || unlockDecodeStatus(t, r).State != unlock.StateAuthenticating {
				t.Fatalf("POST /unlock = %v, want 200 authenticating", r)
			}
			st := b.wait()
			if st.State != unlock.StateError || st.Step != string(tc.step) || st.Error == nil {
				t.Fatalf("status %+v, want error at step %s", st, tc.step)
			}
			if prefix := string(tc.step) + ": " + tc.msg; !strings.HasPrefix(*st.Error, prefix) {
				t.Errorf("error %q, want it to start with %q", *st.Error, prefix)
			}
			unlockAssertNoneLoaded(t, e)
			if got := unlockDockerChildren(t); len(got) > 0 {
				t.Errorf("docker processes left running: %v", got)
			}
			if got := unlockListDir(t, b.tmpDir); len(got) != 0 {
				t.Errorf("TMPDIR holds %v", got)
			}
			if got := unlockListDir(t, archiveDir); !slices.Equal(got, before) {
				t.Errorf("the archive's directory holds %v, was %v", got, before)
			}
			if ents, _ := os.ReadDir(e.StagingDir()); len(ents) != 0 {
				t.Errorf("the engine's staging dir holds %d entries", len(ents))
			}
			if !strings.Contains(b.logs.String(), `msg="unlock: failed"`) {
				t.Errorf("the failure was not logged:\n%s", b.logs.String())
			}
			fragment := o.fragment
			if fragment == nil {
				fragment = unlockFragment
			}
			b.noSecrets([]string{unlockPassword, tc.password}, unlockFragment, fragment)
		})
	}
}

func TestUnlockHTTPConcurrentStartsOneTask(t *testing.T) {
	e := unlockEngine(t)
	gate := make(chan struct{})
	b := newUnlockBed(t, unlockBedOptions{archive: unlockSeal(t, unlockImages.tar, unlockFragment), gate: gate})
	replies := make([]unlockReply, 10)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"email": %q, "password": %q}`, unlockEmail, unlockPassword)
			req, _ := http.NewRequest(http.MethodPost, b.url+"/unlock", strings.NewReader(body))
			resp, err := unlockClient.Do(req)
			if err != nil {
				replies[i] = unlockReply{code: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			replies[i] = unlockReply{code: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: data}
		}()
	}
	wg.Wait()
	close(gate)
	for i, r := range replies {
		b.bodies = append(b.bodies, string(r.body))
		if r.code != http.StatusOK || unlockDecodeStatus(t, r).State != unlock.StateAuthenticating {
			t.Errorf("POST %d = %v, want 200 authenticating", i, r)
		}
	}
	if st := b.wait(); st.State != unlock.StateReady {
		t.Fatalf("status %+v, want ready", st)
	}
	if l, f := b.calls(); l != 1 || f != 1 {
		t.Errorf("Resource API logins/fragments = %d/%d, want 1/1: one task", l, f)
	}
	for _, ref := range unlockImages.refs {
		if id, _ := e.Inspect(ref); id != unlockImages.ids[ref] {
			t.Errorf("image %s is %q, want %s", ref, id, unlockImages.ids[ref])
		}
	}
	b.noSecrets([]string{unlockPassword}, unlockFragment)
}

// Bodies that are not {email, password} are refused before anything
// starts; no engine is needed.
func TestUnlockHTTPBadBodies(t *testing.T) {
	b := newUnlockBed(t, unlockBedOptions{archive: []byte("never read"), docker: "/nonexistent/docker"})
	for _, tc := range []struct {
		ct, body string
		code     int
	}{
		{"application/json", "", http.StatusBadRequest},
		{"application/json", "not json", http.StatusBadRequest},
		{"application/json", `{"email": "a@b.c", "password": "x"} {}`, http.StatusBadRequest},
		{"application/json", `{"email": 1, "password": "x"}`, http.StatusBadRequest},
		{"application/json", `["a@b.c", "x"]`, http.StatusBadRequest},
		{"", `{"email": "a@b.c"}`, http.StatusUnprocessableEntity},
		{"application/json", `{"password": "` + unlockPassword + `"}`, http.StatusUnprocessableEntity},
		{"application/json", `{"email": "  ", "password": "x"}`, http.StatusUnprocessableEntity},
		{"application/json", `{"email": "a@b.c", "password": ""}`, http.StatusUnprocessableEntity},
		{"application/json", `{"email": null, "password": "x"}`, http.StatusUnprocessableEntity},
		{"text/plain", `{"email": "a@b.c", "password": "x"}`, http.StatusUnsupportedMediaType},
	} {
		r := b.call(http.MethodPost, "/unlock", tc.ct, tc.body)
		var body map[string]string
		if r.code != tc.code || r.ct != "application/json" || json.Unmarshal(r.body, &body) != nil || len(body) != 1 || body["detail"] == "" {
			t.Errorf("POST /unlock %q (%s) = %v, want %d JSON {\"detail\"}", tc.body, tc.ct, r, tc.code)
		}
	}
	if r := b.call(http.MethodGet, "/unlock", "", ""); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /unlock = %v, want 405", r)
	}
	if st := b.status(); st != (unlock.Status{State: unlock.StateIdle}) {
		t.Errorf("status %+v, want idle", st)
	}
	if n := b.api.Requests(); len(n) != 0 {
		t.Errorf("the Resource API was called: %v", n)
	}
	b.noSecrets([]string{unlockPassword}, unlockFragment)
}

// Without an unlock task, /unlock says so and the status is idle.
func TestUnlockHTTPNotConfigured(t *testing.T) {
	srv := httptest.NewServer(control.NewHandler(control.Config{}))
	t.Cleanup(srv.Close)
	b := &unlockBed{t: t, url: srv.URL}
	if r := b.post(unlockEmail, unlockPassword); r.code != http.StatusNotImplemented || !strings.Contains(string(r.body), `"detail"`) {
		t.Errorf("POST /unlock = %v, want 501 {\"detail\"}", r)
	}
	if st := b.status(); st != (unlock.Status{State: unlock.StateIdle}) {
		t.Errorf("status %+v, want idle", st)
	}
}
