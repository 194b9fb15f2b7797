package unlock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/azaion/loader/resources"
)

// waitDelay bounds how long Wait waits for docker's output pipes after the
// process has ended or been killed.
const waitDelay = 10 * time.Second

// imagesLoaded reports whether `docker image inspect` succeeds for every
// configured image. With no images configured it reports false, so that the
// archive is loaded.
func (t *Task) imagesLoaded(ctx context.Context) bool {
	if len(t.cfg.Images) == 0 {
		return false
	}
	err := t.inspect(ctx, t.cfg.Images...)
	if err != nil {
		t.log.Info("unlock: images not all loaded", "reason", err.Error())
	}
	return err == nil
}

// missingImages returns the configured images that `docker image inspect`
// does not find.
func (t *Task) missingImages(ctx context.Context) []string {
	if len(t.cfg.Images) == 0 || t.inspect(ctx, t.cfg.Images...) == nil {
		return nil
	}
	var missing []string
	for _, img := range t.cfg.Images {
		if t.inspect(ctx, img) != nil {
			missing = append(missing, img)
		}
	}
	return missing
}

// inspect runs `docker image inspect` on images, bounded by StepTimeout.
func (t *Task) inspect(ctx context.Context, images ...string) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.StepTimeout)
	defer cancel()
	args := append([]string{"image", "inspect", "--format", "{{.Id}}"}, images...)
	cmd := exec.CommandContext(ctx, t.cfg.Docker, args...)
	var stderr tail
	cmd.Stderr = &stderr
	cmd.WaitDelay = waitDelay
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker image inspect: %w: %s", err, stderr.String())
	}
	return nil
}

// load streams the archive through decryption into `docker load`.
func (t *Task) load(ctx context.Context, key []byte) error {
	f, err := os.Open(t.cfg.ArchivePath)
	if err != nil {
		return failAt(StateDecrypting, "open the archive: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return failAt(StateDecrypting, "open the archive: %w", err)
	}
	t.update(func(s *Status) { s.BytesTotal = st.Size() })
	if st.Mode().IsRegular() {
		if err := checkTail(f, st.Size(), key); err != nil {
			return &stepError{step: StateDecrypting, err: err}
		}
	}
	plain, err := resources.DecryptReader(key, &progress{r: f, t: t})
	if err != nil {
		return failAt(StateDecrypting, "%w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.LoadTimeout)
	defer cancel()
	return t.dockerLoad(ctx, plain)
}

// checkTail fails fast, before docker starts, on an archive that is not a
// whole number of blocks or whose last block's padding does not decrypt
// with key: a truncated archive or a wrong key fragment. The stream checks
// the padding again at its end.
func checkTail(f *os.File, size int64, key []byte) error {
	if size < 2*resources.BlockSize || size%resources.BlockSize != 0 {
		return fmt.Errorf("the archive is truncated or damaged: %d bytes is not a whole number of AES blocks after the IV", size)
	}
	tail := make([]byte, 2*resources.BlockSize)
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil {
		return fmt.Errorf("read the archive: %w", err)
	}
	if _, err := resources.DecryptKey(key, tail); err != nil {
		return fmt.Errorf("the archive does not decrypt with this key fragment (wrong fragment, or a truncated or damaged archive): %w", err)
	}
	return nil
}

// dockerLoad copies plain into `docker load`'s stdin. It closes stdin, which
// lets docker commit, only after plain ended cleanly (its padding checked);
// on any error it kills docker and waits for it instead.
func (t *Task) dockerLoad(ctx context.Context, plain io.Reader) error {
	cmd := exec.CommandContext(ctx, t.cfg.Docker, "load")
	var stdout, stderr tail
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = waitDelay
	setProcAttr(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return failAt(StateLoadingImages, "docker load: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return failAt(StateLoadingImages, "start docker load: %w", err)
	}
	w := &firstWrite{w: stdin, first: func() { t.enter(StateLoadingImages) }}
	_, err = io.CopyBuffer(w, plain, make([]byte, 256<<10))
	if err != nil {
		_ = cmd.Process.Kill()
		werr := cmd.Wait()
		switch {
		case ctx.Err() != nil:
			return failAt(StateLoadingImages, "docker load stopped: %w", context.Cause(ctx))
		case w.err != nil:
			return failAt(StateLoadingImages, "docker load failed: %v: %s", werr, stderr.String())
		case errors.Is(err, resources.ErrDecrypt):
			return failAt(StateDecrypting, "the archive does not decrypt with this key fragment (wrong fragment, or a truncated or damaged archive): %w", err)
		default:
			return failAt(StateDecrypting, "read the archive: %w", err)
		}
	}
	if err := stdin.Close(); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return failAt(StateLoadingImages, "docker load: close stdin: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return failAt(StateLoadingImages, "docker load stopped: %w", context.Cause(ctx))
		}
		return failAt(StateLoadingImages, "docker load failed: %v: %s", err, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line != "" {
			t.log.Info("unlock: docker load", "output", line)
		}
	}
	return nil
}

// progress counts the archive bytes read into the task's status.
type progress struct {
	r io.Reader
	t *Task
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.t.update(func(s *Status) { s.BytesDone += int64(n) })
	}
	return n, err
}

// firstWrite calls first before the first write and remembers a write error.
type firstWrite struct {
	w     io.Writer
	first func()
	err   error
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if f.first != nil {
		f.first()
		f.first = nil
	}
	n, err := f.w.Write(p)
	if err != nil {
		f.err = err
	}
	return n, err
}

// tailMax is how much of docker's output a tail keeps.
const tailMax = 2 << 10

// tail keeps the last tailMax bytes written to it; safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tail) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - tailMax; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tail) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf))
}
