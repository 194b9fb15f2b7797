package unlock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
)

const (
	testEmail    = "operator@azaion.example"
	testPassword = "Pa55-correct-horse-battery"
)

var testFragment = []byte("key-fragment-7f3c9a1e5b2d8c4f6a0e")

func newAPI() *fakeAPI {
	return &fakeAPI{email: testEmail, password: testPassword, fragment: testFragment}
}

func TestUnlockLoadsImages(t *testing.T) {
	cleanEngine(t)
	archive := sealTo(t, fixture.tar, testFragment)
	st, _ := os.Stat(archive)
	api := newAPI()
	var logs syncBuffer
	task := newTask(t, archive, "", api, &logs)

	if got := task.Status(); got.State != StateIdle || got.Error != nil {
		t.Fatalf("new task: %+v, want idle", got)
	}
	got, err := task.Start(context.Background(), "  Operator@Azaion.example ", testPassword)
	if err != nil || got.State != StateAuthenticating {
		t.Fatalf("Start = %+v, %v; want authenticating, nil", got, err)
	}
	end := finish(t, task)
	want := Status{State: StateReady, BytesDone: st.Size(), BytesTotal: st.Size()}
	if end != want {
		t.Fatalf("end status %+v, want %+v", end, want)
	}
	for _, img := range fixture.images {
		if id := imageID(img); id != fixture.ids[img] {
			t.Errorf("image %s loaded as %q, want the original %q", img, id, fixture.ids[img])
		}
	}
	if c, l, f := api.calls(); c != 1 || l != 1 || f != 1 {
		t.Errorf("clients/logins/fragments = %d/%d/%d, want 1/1/1", c, l, f)
	}
	if want := []State{StateAuthenticating, StateDownloadingKey}; !slices.Equal(api.states, want) {
		t.Errorf("states at Login, KeyFragment = %v, want %v", api.states, want)
	}
	var seen []string
	for _, m := range regexp.MustCompile(`msg="unlock: (?:state|started)" .*state=(\w+)`).FindAllStringSubmatch(logs.String(), -1) {
		seen = append(seen, m[1])
	}
	if want := []string{"authenticating", "downloading_key", "decrypting", "loading_images", "ready"}; !slices.Equal(seen, want) {
		t.Errorf("logged states %v, want %v\n%s", seen, want, logs.String())
	}
	// Ready: another Start starts nothing.
	again, err := task.Start(context.Background(), testEmail, testPassword)
	if err != nil || again.State != StateReady {
		t.Errorf("Start when ready = %+v, %v; want ready, nil", again, err)
	}
	if _, l, _ := api.calls(); l != 1 {
		t.Errorf("Start when ready logged in again (%d logins)", l)
	}
}

func TestAlreadyLoadedSkipsLoginAndArchive(t *testing.T) {
	cleanEngine(t)
	if _, err := docker(fixture.tar, "load"); err != nil {
		t.Fatal(err)
	}
	for name, archive := range map[string]string{
		"missing":    filepath.Join(workDir, "no-such-archive.enc"),
		"unreadable": workDir, // a directory: opening it as the archive would fail
	} {
		t.Run(name, func(t *testing.T) {
			api := newAPI()
			var logs syncBuffer
			task := newTask(t, archive, "", api, &logs)
			got, err := task.Start(context.Background(), testEmail, "wrong password: must not be used")
			if err != nil || got.State != StateReady || got.Error != nil {
				t.Fatalf("Start = %+v, %v; want ready, nil", got, err)
			}
			if got := finish(t, task); got.State != StateReady {
				t.Fatalf("status %+v, want ready", got)
			}
			if c, l, f := api.calls(); c+l+f != 0 {
				t.Errorf("clients/logins/fragments = %d/%d/%d, want none", c, l, f)
			}
		})
	}
}

func TestArchiveMissing(t *testing.T) {
	cleanEngine(t)
	api := newAPI()
	var logs syncBuffer
	task := newTask(t, filepath.Join(workDir, "no-such-archive.enc"), "", api, &logs)
	got, err := task.Start(context.Background(), testEmail, testPassword)
	if !errors.Is(err, ErrArchiveMissing) {
		t.Fatalf("Start error %v, want ErrArchiveMissing", err)
	}
	if got.State != StateIdle || task.Status().State != StateIdle {
		t.Errorf("state after a missing archive %q/%q, want idle", got.State, task.Status().State)
	}
	if c, l, f := api.calls(); c+l+f != 0 {
		t.Errorf("clients/logins/fragments = %d/%d/%d, want none", c, l, f)
	}
}

// wrongFragment returns a fragment other than testFragment whose key fails
// the padding check of the archive's last block, so that the test does not
// depend on the 1-in-256 chance of a random block padding validly.
func wrongFragment(t *testing.T, archive string) []byte {
	t.Helper()
	c, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		f := []byte(fmt.Sprintf("wrong-fragment-%d-ab12cd34", i))
		if _, err := resources.Decrypt(string(f), c[len(c)-32:]); err != nil {
			return f
		}
	}
	t.Fatal("no wrong fragment found")
	return nil
}

func TestUnlockFailures(t *testing.T) {
	type setup struct {
		archive string
		docker  string
		api     *fakeAPI
		pass    string
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T) setup
		step    State
		msg     string // the error message starts with step + ": " + msg
	}{
		{"wrong fragment", func(t *testing.T) setup {
			a := sealTo(t, fixture.tar, testFragment)
			api := newAPI()
			api.fragment = wrongFragment(t, a)
			return setup{archive: a, api: api, pass: testPassword}
		}, StateDecrypting, "the archive does not decrypt with this key fragment"},
		{"truncated mid-block", func(t *testing.T) setup {
			a := sealTo(t, fixture.tar, testFragment)
			truncate(t, a, 7)
			return setup{archive: a, api: newAPI(), pass: testPassword}
		}, StateDecrypting, "the archive is truncated or damaged"},
		{"truncated at a block boundary", func(t *testing.T) setup {
			// The tar ends with 1024 zero bytes: the new last block
			// decrypts to zeros, an invalid padding.
			a := sealTo(t, fixture.tar, testFragment)
			truncate(t, a, 48)
			return setup{archive: a, api: newAPI(), pass: testPassword}
		}, StateDecrypting, "the archive does not decrypt with this key fragment"},
		{"bad credentials", func(t *testing.T) setup {
			api := newAPI()
			api.leaky = true
			return setup{archive: sealTo(t, fixture.tar, testFragment), api: api, pass: "Wrong-" + testPassword}
		}, StateAuthenticating, "log in to the Resource API"},
		{"key download fails", func(t *testing.T) setup {
			api := newAPI()
			api.fragmentErr = fmt.Errorf("GET /binary-split/key-fragment: %w", resources.ErrUpstream)
			return setup{archive: sealTo(t, fixture.tar, testFragment), api: api, pass: testPassword}
		}, StateDownloadingKey, "download the key fragment"},
		{"empty key fragment", func(t *testing.T) setup {
			api := newAPI()
			api.fragment = []byte{}
			return setup{archive: sealTo(t, fixture.tar, testFragment), api: api, pass: testPassword}
		}, StateDownloadingKey, "the Resource API sent an empty key fragment"},
		{"docker CLI missing", func(t *testing.T) setup {
			return setup{archive: sealTo(t, fixture.tar, testFragment), docker: "/nonexistent/docker", api: newAPI(), pass: testPassword}
		}, StateLoadingImages, "start docker load"},
		{"docker load fails", func(t *testing.T) setup {
			plain := bytes.Repeat([]byte("this is not a docker save tar\n"), 1000)
			return setup{archive: sealTo(t, plain, testFragment), api: newAPI(), pass: testPassword}
		}, StateLoadingImages, "docker load failed: exit status 1: "},
		{"archive lacks an image", func(t *testing.T) setup {
			one, err := docker(fixture.tar, "load")
			if err != nil {
				t.Fatal(err, string(one))
			}
			saved, err := docker(nil, "save", fixture.images[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := removeFixtureImages(); err != nil {
				t.Fatal(err)
			}
			return setup{archive: sealTo(t, saved, testFragment), api: newAPI(), pass: testPassword}
		}, StateLoadingImages, "docker load succeeded but the archive lacks images azaion-test/beta:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEngine(t)
			s := tc.prepare(t)
			archiveDir := filepath.Dir(s.archive)
			beforeArchive, beforeTmp := listDir(t, archiveDir), listDir(t, tmpDir)
			var logs syncBuffer
			task := newTask(t, s.archive, s.docker, s.api, &logs)
			if _, err := task.Start(context.Background(), testEmail, s.pass); err != nil {
				t.Fatalf("Start: %v", err)
			}
			got := finish(t, task)
			if got.State != StateError || got.Step != string(tc.step) || got.Error == nil {
				t.Fatalf("status %+v, want error at step %s", got, tc.step)
			}
			if prefix := string(tc.step) + ": " + tc.msg; !strings.HasPrefix(*got.Error, prefix) {
				t.Errorf("error %q, want it to start with %q", *got.Error, prefix)
			}
			if tc.name == "archive lacks an image" {
				if imageID(fixture.images[0]) != fixture.ids[fixture.images[0]] {
					t.Errorf("the image the archive holds was not loaded")
				}
			} else {
				assertNothingLoaded(t)
			}
			if after := listDir(t, archiveDir); !slices.Equal(after, beforeArchive) {
				t.Errorf("archive dir %v, was %v", after, beforeArchive)
			}
			if after := listDir(t, tmpDir); !slices.Equal(after, beforeTmp) {
				t.Errorf("TMPDIR %v, was %v", after, beforeTmp)
			}
			if !strings.Contains(logs.String(), "unlock: failed") {
				t.Errorf("failure not logged:\n%s", logs.String())
			}
			assertNoSecrets(t, "log", logs.String(), s.pass, s.api.fragment)
			assertNoSecrets(t, "status", *got.Error, s.pass, s.api.fragment)
			js, _ := json.Marshal(got)
			assertNoSecrets(t, "status JSON", string(js), s.pass, s.api.fragment)
		})
	}
}

func truncate(t *testing.T, path string, by int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-by); err != nil {
		t.Fatal(err)
	}
}

// assertNoSecrets fails when text holds the password, the fragment or its
// key in any common spelling.
func assertNoSecrets(t *testing.T, what, text, password string, fragment []byte) {
	t.Helper()
	key := resources.AESKey(string(fragment))
	secrets := map[string]string{"password": password}
	if len(fragment) > 0 {
		for name, s := range map[string]string{
			"fragment": string(fragment), "fragment hex": hex.EncodeToString(fragment),
			"fragment base64": base64.StdEncoding.EncodeToString(fragment),
			"key":             string(key), "key hex": hex.EncodeToString(key), "key base64": base64.StdEncoding.EncodeToString(key),
		} {
			secrets[name] = s
		}
	}
	for name, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the %s:\n%s", what, name, text)
		}
	}
}

func TestConcurrentStartsStartOneTask(t *testing.T) {
	cleanEngine(t)
	api := newAPI()
	api.gate = make(chan struct{})
	var logs syncBuffer
	task := newTask(t, sealTo(t, fixture.tar, testFragment), "", api, &logs)

	var wg sync.WaitGroup
	results := make([]Status, 10)
	errs := make([]error, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = task.Start(context.Background(), testEmail, testPassword)
		}()
	}
	wg.Wait()
	close(api.gate)
	for i := range results {
		if errs[i] != nil || results[i].State != StateAuthenticating {
			t.Errorf("Start %d = %+v, %v; want authenticating, nil", i, results[i], errs[i])
		}
	}
	if got := finish(t, task); got.State != StateReady {
		t.Fatalf("status %+v, want ready", got)
	}
	if c, l, f := api.calls(); c != 1 || l != 1 || f != 1 {
		t.Errorf("clients/logins/fragments = %d/%d/%d, want 1/1/1", c, l, f)
	}
}

func TestRestartAfterError(t *testing.T) {
	cleanEngine(t)
	api := newAPI()
	var logs syncBuffer
	task := newTask(t, sealTo(t, fixture.tar, testFragment), "", api, &logs)
	if _, err := task.Start(context.Background(), testEmail, "not the password"); err != nil {
		t.Fatal(err)
	}
	if got := finish(t, task); got.State != StateError || got.Step != string(StateAuthenticating) {
		t.Fatalf("status %+v, want error at authenticating", got)
	}
	got, err := task.Start(context.Background(), testEmail, testPassword)
	if err != nil || got.State != StateAuthenticating || got.Error != nil || got.Step != "" {
		t.Fatalf("Start after error = %+v, %v; want a fresh authenticating", got, err)
	}
	if got := finish(t, task); got.State != StateReady {
		t.Fatalf("status %+v, want ready", got)
	}
	for _, img := range fixture.images {
		if imageID(img) != fixture.ids[img] {
			t.Errorf("image %s not loaded", img)
		}
	}
}

// errAfter is a reader that, once r is exhausted, waits delay and then
// fails with err.
type errAfter struct {
	r     io.Reader
	delay time.Duration
	err   error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		time.Sleep(e.delay)
		return n, e.err
	}
	return n, err
}

// blockAfter is a reader that, once r is exhausted, blocks until ctx ends.
type blockAfter struct {
	r   io.Reader
	ctx context.Context
}

func (b *blockAfter) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		<-b.ctx.Done()
		return n, b.ctx.Err()
	}
	return n, err
}

// A bad padding found after docker has been sent the whole tar must still
// leave no image behind: docker is killed, never sees the end of its stdin.
// The stream fails two seconds after the tar's last byte, so that the daemon
// has received and unpacked all of it by then.
func TestStreamFailureAfterWholeTarLoadsNothing(t *testing.T) {
	cleanEngine(t)
	var logs syncBuffer
	task := newTask(t, filepath.Join(workDir, "unused"), "", newAPI(), &logs)
	plain := &errAfter{bytes.NewReader(fixture.tar), 2 * time.Second, fmt.Errorf("%w: bad padding", resources.ErrDecrypt)}
	err := task.dockerLoad(context.Background(), plain)
	var se *stepError
	if !errors.As(err, &se) || se.step != StateDecrypting || !errors.Is(err, resources.ErrDecrypt) {
		t.Fatalf("dockerLoad = %v, want a decrypting step error wrapping ErrDecrypt", err)
	}
	assertNothingLoaded(t)

	// The same tar ending cleanly loads: the check above can fail.
	if err := task.dockerLoad(context.Background(), bytes.NewReader(fixture.tar)); err != nil {
		t.Fatal(err)
	}
	for _, img := range fixture.images {
		if imageID(img) != fixture.ids[img] {
			t.Errorf("image %s not loaded by a clean stream", img)
		}
	}
}

func TestCanceledLoadLoadsNothing(t *testing.T) {
	cleanEngine(t)
	var logs syncBuffer
	task := newTask(t, filepath.Join(workDir, "unused"), "", newAPI(), &logs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := task.dockerLoad(ctx, &blockAfter{bytes.NewReader(fixture.tar), ctx})
	var se *stepError
	if !errors.As(err, &se) || se.step != StateLoadingImages || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dockerLoad = %v, want a loading_images step error wrapping the deadline", err)
	}
	if !strings.HasPrefix(err.Error(), "loading_images: docker load stopped: ") {
		t.Errorf("error %q", err)
	}
	assertNothingLoaded(t)
}

func TestStatusJSON(t *testing.T) {
	b, err := json.Marshal(Status{State: StateIdle})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"state":"idle","error":null,"step":"","bytes_decrypted":0,"bytes_total":0}`; string(b) != want {
		t.Errorf("idle JSON %s, want %s", b, want)
	}
	msg := "authenticating: log in to the Resource API: unauthorized"
	b, _ = json.Marshal(Status{State: StateError, Error: &msg, Step: "authenticating", BytesTotal: 32})
	if want := `{"state":"error","error":"authenticating: log in to the Resource API: unauthorized","step":"authenticating","bytes_decrypted":0,"bytes_total":32}`; string(b) != want {
		t.Errorf("error JSON %s, want %s", b, want)
	}
}
