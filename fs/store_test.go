package fs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/azaion/loader/resources"
)

// testKey is the fixed resource key the test resources are encrypted with.
var testKey = resources.AESKey("azaion fs test resource key")

// memStore is a Store in memory over the real crypto: it keeps each
// resource as the small and big parts of PROTOCOL §2 and opens it with
// resources.NewReader, so every read through the mount decrypts.
type memStore struct {
	mu         sync.Mutex
	configured []string
	files      map[string]*memFile // "folder/name"
	loggedIn   bool
	fail       map[string]error // "folder/name" → the error Open returns
	versions   int

	opens      atomic.Int64 // Open calls
	plainReads atomic.Int64 // big-part reads for plaintext (not the size probe)
}

type memFile struct {
	plain, small, big []byte
	version           string
	// part wraps the big part, to make it block; nil reads it directly.
	part func(resources.BytesPart) resources.BigPart
}

func newMemStore(configured ...string) *memStore {
	return &memStore{configured: configured, files: map[string]*memFile{}, loggedIn: true, fail: map[string]error{}}
}

// put stores (or replaces, as a new version) folder/name with plain.
func (s *memStore) put(t testing.TB, folder, name string, plain []byte) {
	t.Helper()
	c, err := resources.EncryptKey(testKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	small, big := resources.Split(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions++
	s.files[folder+"/"+name] = &memFile{plain: plain, small: small, big: big, version: fmt.Sprintf("v%d", s.versions)}
}

func (s *memStore) setPart(folder, name string, part func(resources.BytesPart) resources.BigPart) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[folder+"/"+name].part = part
}

func (s *memStore) setLoggedIn(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loggedIn = v
}

func (s *memStore) setFail(folder, name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[folder+"/"+name] = err
}

func (s *memStore) Folders(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.configured)
	for k := range s.files {
		out = append(out, strings.SplitN(k, "/", 2)[0])
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (s *memStore) HasFolder(ctx context.Context, folder string) (bool, error) {
	folders, _ := s.Folders(ctx)
	if slices.Contains(folders, folder) {
		return true, nil
	}
	names, err := s.List(ctx, folder)
	return len(names) > 0, err
}

func (s *memStore) List(ctx context.Context, folder string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.files {
		if f, n, _ := strings.Cut(k, "/"); f == folder {
			out = append(out, n)
		}
	}
	for k := range s.fail {
		if f, n, _ := strings.Cut(k, "/"); f == folder {
			out = append(out, n)
		}
	}
	if len(out) == 0 && !slices.Contains(s.configured, folder) {
		return nil, fmt.Errorf("list %s: %w", folder, resources.ErrNotFound)
	}
	return out, nil
}

// Known reports every resource's size, as a cache that has seen them all.
func (s *memStore) Known(folder, name string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[folder+"/"+name]; f != nil && len(f.plain) > 0 {
		return int64(len(f.plain)), true
	}
	return 0, false
}

func (s *memStore) Open(ctx context.Context, folder, name string) (*resources.Resource, error) {
	s.opens.Add(1)
	if err := resources.CheckNames(folder, name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	loggedIn, failErr, f := s.loggedIn, s.fail[folder+"/"+name], s.files[folder+"/"+name]
	s.mu.Unlock()
	switch {
	case !loggedIn:
		return nil, fmt.Errorf("open %s/%s: %w", folder, name, resources.ErrNotLoggedIn)
	case failErr != nil:
		return nil, failErr
	case f == nil:
		return nil, fmt.Errorf("open %s/%s: %w", folder, name, resources.ErrNotFound)
	}
	var part resources.BigPart = countingPart{resources.BytesPart(f.big), &s.plainReads}
	if f.part != nil {
		part = f.part(resources.BytesPart(f.big))
	}
	r, err := resources.NewReader(ctx, testKey, f.small, part, int64(len(f.big)))
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", folder, name, err)
	}
	return &resources.Resource{Folder: folder, Name: name, Version: f.version, Reader: r}, nil
}

// countingPart counts the reads of plaintext ranges.
type countingPart struct {
	resources.BytesPart
	n *atomic.Int64
}

func (c countingPart) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if len(p) > 2*resources.BlockSize {
		c.n.Add(1)
	}
	return c.BytesPart.ReadAt(ctx, p, off)
}

// blockingPart blocks every read but the size probe of the last two
// blocks: until its context ends when honour is set, or until release is
// closed when not (a store that ignores its context). Each blocked read
// sends on entered, and reports its context's error on done.
type blockingPart struct {
	resources.BytesPart
	honour  bool
	release chan struct{}
	entered chan struct{}
	done    chan error
}

func newBlockingPart(t testing.TB, honour bool) *blockingPart {
	b := &blockingPart{honour: honour, release: make(chan struct{}), entered: make(chan struct{}, 64), done: make(chan error, 64)}
	t.Cleanup(func() { close(b.release) })
	return b
}

func (b *blockingPart) wrap(p resources.BytesPart) resources.BigPart {
	c := *b
	c.BytesPart = p
	return &c
}

func (b *blockingPart) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off+int64(len(p)) >= int64(len(b.BytesPart))-2*resources.BlockSize && len(p) <= 2*resources.BlockSize {
		return b.BytesPart.ReadAt(ctx, p, off)
	}
	b.entered <- struct{}{}
	if b.honour {
		select {
		case <-ctx.Done():
			b.done <- ctx.Err()
			return 0, ctx.Err()
		case <-b.release:
		}
	} else {
		<-b.release
	}
	b.done <- nil
	return 0, fmt.Errorf("released: %w", resources.ErrUpstream)
}

// plaintext is n deterministic pseudo-random bytes.
func plaintext(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, n64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func n64(n int) uint64 { return uint64(n) }

// logBuf collects log lines for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count counts the lines that contain every one of subs.
func (l *logBuf) count(subs ...string) int {
	n := 0
	for line := range strings.Lines(l.String()) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			n++
		}
	}
	return n
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
