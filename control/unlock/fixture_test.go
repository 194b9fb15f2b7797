package unlock

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/azaion/loader/control/unlock/dockertest"
	"github.com/azaion/loader/resources"
)

// fixture holds images built with `docker import` (nothing can be pulled),
// saved with `docker save` and then removed from the engine. useEngine
// builds it once, with the engine.
var fixture struct {
	once   sync.Once
	images []string
	ids    map[string]string // image → ID, as docker import gave it
	tar    []byte            // `docker save` of all images
}

// useEngine starts the shared engine and builds the fixture, once.
func useEngine(t *testing.T) {
	t.Helper()
	eng = dockertest.Shared(t)
	fixture.once.Do(func() {
		fixture.images = []string{"azaion-test/alpha:1", "azaion-test/beta:1"}
		fixture.ids = map[string]string{}
		for _, img := range fixture.images {
			fixture.ids[img] = eng.BuildImage(t, img)
		}
		fixture.tar = eng.Save(t, fixture.images...)
	})
	if fixture.tar == nil {
		t.Fatal("the test images were not built")
	}
}

func removeFixtureImages() error {
	for _, img := range fixture.images {
		if _, ok := eng.Inspect(img); !ok {
			continue
		}
		if _, err := docker(nil, "rmi", "-f", img); err != nil {
			return err
		}
	}
	return nil
}

// cleanEngine makes sure no fixture image is loaded before a test.
func cleanEngine(t *testing.T) {
	t.Helper()
	useEngine(t)
	if err := removeFixtureImages(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeFixtureImages(); err != nil {
			t.Error(err)
		}
	})
}

// imageID returns the loaded image's ID, or "" when docker does not find it.
func imageID(img string) string {
	id, _ := eng.Inspect(img)
	return id
}

// assertNothingLoaded checks, for a second so that a late commit would show,
// that no fixture image is loaded.
func assertNothingLoaded(t *testing.T) {
	t.Helper()
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		for _, img := range fixture.images {
			if id := imageID(img); id != "" {
				t.Fatalf("image %s was loaded (%s)", img, id)
			}
		}
	}
}

// sealTo writes plain sealed with fragment to a new directory under workDir
// and returns the archive's path.
func sealTo(t *testing.T, plain, fragment []byte) string {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var buf bytes.Buffer
	if err := Seal(&buf, bytes.NewReader(plain), fragment, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "images.enc")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// listDir names a directory's entries.
func listDir(t *testing.T, dir string) []string {
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

// fakeAPI is an in-process Resource API: one user, one key fragment. It
// records every call, and the task's state at each.
type fakeAPI struct {
	email, password string
	fragment        []byte
	fragmentErr     error
	leaky           bool          // Login's error carries the password, as a careless client's might
	gate            chan struct{} // when set, Login waits for it to close
	task            *Task

	mu                        sync.Mutex
	clients, logins, fragCall int
	states                    []State
}

func (f *fakeAPI) newClient() KeyClient {
	f.mu.Lock()
	f.clients++
	f.mu.Unlock()
	return fakeClient{f}
}

func (f *fakeAPI) record(counter *int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*counter++
	if f.task != nil {
		f.states = append(f.states, f.task.Status().State)
	}
}

func (f *fakeAPI) calls() (clients, logins, fragments int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clients, f.logins, f.fragCall
}

type fakeClient struct{ f *fakeAPI }

func (c fakeClient) Login(ctx context.Context, email, password string) error {
	c.f.record(&c.f.logins)
	if c.f.gate != nil {
		select {
		case <-c.f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if resources.NormEmail(email) != c.f.email || password != c.f.password {
		if c.f.leaky {
			return fmt.Errorf("POST /login as %s with password %s: 401: %w", email, password, resources.ErrUnauthorized)
		}
		return fmt.Errorf("POST /login: 401: %w", resources.ErrUnauthorized)
	}
	return nil
}

func (c fakeClient) KeyFragment(ctx context.Context) ([]byte, error) {
	c.f.record(&c.f.fragCall)
	if c.f.fragmentErr != nil {
		return nil, c.f.fragmentErr
	}
	return bytes.Clone(c.f.fragment), nil
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTask builds a Task over api whose logs go to logs. The test's cleanup
// closes it, so that no task outlives its test.
func newTask(t *testing.T, archive, dockerCLI string, api *fakeAPI, logs *syncBuffer) *Task {
	t.Helper()
	task := New(Config{
		ArchivePath: archive,
		Images:      fixture.images,
		Docker:      dockerCLI,
		NewClient:   api.newClient,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		StepTimeout: 20 * time.Second,
		LoadTimeout: 2 * time.Minute,
	})
	api.task = task
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := task.Close(ctx); err != nil {
			t.Errorf("close task: %v", err)
		}
	})
	return task
}

// finish waits, bounded, for the task to end and returns its status.
func finish(t *testing.T, task *Task) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := task.Wait(ctx); err != nil {
		t.Fatalf("task did not end: %v (status %+v)", err, task.Status())
	}
	return task.Status()
}
