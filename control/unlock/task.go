// Package unlock owns the Docker image unlock of PROTOCOL §5 and §6: the
// task that logs in with a user's credentials, downloads the key fragment,
// and streams the encrypted image archive through decryption into
// `docker load`, and Seal, which writes such an archive.
//
// No plaintext of the archive ever touches disk: it flows from the
// decrypting reader straight into docker's stdin, and docker's stdin is
// closed only after the padding at the archive's end has been checked. On
// any failure docker is killed instead, so it never commits a load.
package unlock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/azaion/loader/resources"
)

// State is one step of the unlock task.
type State string

// The unlock states of PROTOCOL §6.
const (
	StateIdle           State = "idle"
	StateAuthenticating State = "authenticating"
	StateDownloadingKey State = "downloading_key"
	StateDecrypting     State = "decrypting"
	StateLoadingImages  State = "loading_images"
	StateReady          State = "ready"
	StateError          State = "error"
)

// ErrArchiveMissing: the archive does not exist and the configured images
// are not all loaded, so there is nothing to unlock (the control API's 404).
var ErrArchiveMissing = errors.New("image archive missing and images not loaded")

// KeyClient is what the task needs from a Resource API client.
type KeyClient interface {
	Login(ctx context.Context, email, password string) error
	KeyFragment(ctx context.Context) ([]byte, error)
}

// Defaults of Config.
const (
	DefaultArchivePath = "/opt/azaion/images.enc"
	DefaultDocker      = "docker"
	DefaultStepTimeout = 30 * time.Second
	DefaultLoadTimeout = 30 * time.Minute
)

// Config configures a Task.
type Config struct {
	// ArchivePath is the encrypted image archive; default DefaultArchivePath.
	ArchivePath string
	// Images are the image references that must all be loaded. With none
	// configured the archive is always loaded.
	Images []string
	// Docker is the docker CLI's path or name; default "docker". It runs
	// with the loader's environment, so DOCKER_HOST is honoured.
	Docker string
	// NewClient returns a fresh Resource API client for each unlock, which
	// logs in with that request's own credentials.
	NewClient func() KeyClient
	// Logger receives the task's progress; default slog.Default().
	Logger *slog.Logger
	// StepTimeout bounds the login, the key download and each
	// `docker image inspect`; default DefaultStepTimeout.
	StepTimeout time.Duration
	// LoadTimeout bounds the decryption and `docker load` together; default
	// DefaultLoadTimeout.
	LoadTimeout time.Duration
}

// Status is the task's state as GET /unlock/status reports it: a superset
// of the seed's {state, error}.
type Status struct {
	State State   `json:"state"`
	Error *string `json:"error"`
	// Step names the step that failed when State is error, else "". It is
	// always present, so that every status has the same fields.
	Step string `json:"step"`
	// BytesDone and BytesTotal are the archive bytes decrypted so far and
	// the archive's size.
	BytesDone  int64 `json:"bytes_decrypted"`
	BytesTotal int64 `json:"bytes_total"`
}

// Task is the unlock task. At most one runs at a time; its methods are safe
// for concurrent use.
type Task struct {
	cfg Config
	log *slog.Logger

	startMu sync.Mutex // serialises Start

	mu     sync.Mutex
	status Status
	done   chan struct{} // closed when the running task ends; nil before the first

	ctx    context.Context // parent of every run; canceled by Close
	cancel context.CancelFunc
}

// New returns an idle Task.
func New(cfg Config) *Task {
	if cfg.ArchivePath == "" {
		cfg.ArchivePath = DefaultArchivePath
	}
	if cfg.Docker == "" {
		cfg.Docker = DefaultDocker
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = DefaultStepTimeout
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = DefaultLoadTimeout
	}
	cfg.Images = append([]string(nil), cfg.Images...)
	ctx, cancel := context.WithCancel(context.Background())
	return &Task{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "unlock"),
		status: Status{State: StateIdle},
		ctx:    ctx,
		cancel: cancel,
	}
}

// Start begins an unlock with the given credentials and returns the state it
// left the task in. A new unlock begins only from idle or error; otherwise
// Start returns the current state and starts nothing. When every configured
// image is already loaded the task becomes ready at once, without logging in
// or opening the archive. When the archive is missing and the images are not
// all loaded, Start returns ErrArchiveMissing and leaves the state as it was.
//
// ctx bounds only the checks Start makes before it returns; the task itself
// runs until it ends, LoadTimeout passes, or Close is called.
func (t *Task) Start(ctx context.Context, email, password string) (Status, error) {
	t.startMu.Lock()
	defer t.startMu.Unlock()
	if st := t.Status(); st.State != StateIdle && st.State != StateError {
		return st, nil
	}
	if t.imagesLoaded(ctx) {
		t.log.Info("unlock: images already loaded", "images", len(t.cfg.Images))
		t.update(func(s *Status) { *s = Status{State: StateReady} })
		return t.Status(), nil
	}
	if _, err := os.Stat(t.cfg.ArchivePath); errors.Is(err, fs.ErrNotExist) {
		t.log.Warn("unlock: archive missing and images not loaded", "archive", t.cfg.ArchivePath)
		return t.Status(), fmt.Errorf("%w: %s", ErrArchiveMissing, t.cfg.ArchivePath)
	}
	done := make(chan struct{})
	started := Status{State: StateAuthenticating}
	t.mu.Lock()
	t.status = started
	t.done = done
	t.mu.Unlock()
	t.log.Info("unlock: started", "state", StateAuthenticating)
	go func() {
		defer close(done)
		t.run(t.ctx, email, resources.Secret(password))
	}()
	return started, nil
}

// Status returns the task's current state.
func (t *Task) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	if s.Error != nil {
		e := *s.Error
		s.Error = &e
	}
	return s
}

// Wait blocks until the running task (if any) ends, or ctx is done.
func (t *Task) Wait(ctx context.Context) error {
	t.mu.Lock()
	done := t.done
	t.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close cancels a running task (killing docker load, which then commits
// nothing) and waits for it to end, or for ctx to be done.
func (t *Task) Close(ctx context.Context) error {
	t.cancel()
	return t.Wait(ctx)
}

// update changes the status under the lock.
func (t *Task) update(f func(*Status)) {
	t.mu.Lock()
	f(&t.status)
	t.mu.Unlock()
}

// enter moves the task to state s and logs it.
func (t *Task) enter(s State) {
	t.update(func(st *Status) { st.State = s })
	t.log.Info("unlock: state", "state", s)
}
