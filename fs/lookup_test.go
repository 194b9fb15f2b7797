package fs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azaion/loader/resources/refapi"
	"github.com/azaion/loader/resources/testbed"
)

// TestMissingNameAskedOncePerSecond: 300 lookups of a name that does not
// exist ask the Resource API at most twice (a miss is remembered for about
// a second); a name uploaded by another loader after the miss appears
// within about a second, and one uploaded through this loader at once.
func TestMissingNameAskedOncePerSecond(t *testing.T) {
	s := newStack(t, testbed.Options{})
	s.upload(t, nil, "present.bin", strings.NewReader("present"))
	store, dir := s.fresh(t, Options{})
	if _, err := os.Stat(filepath.Join(dir, "present.bin")); err != nil {
		t.Fatal(err)
	}

	missing := filepath.Join(dir, "late.bin")
	before := s.bed.API.Requests()[refapi.RouteGet]
	for i := range 300 {
		if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("lookup %d of a missing name: %v, want ENOENT", i, err)
		}
	}
	if calls := s.bed.API.Requests()[refapi.RouteGet] - before; calls < 1 || calls > 2 {
		t.Fatalf("300 lookups of a missing name: %d Resource API calls, want 1 or 2", calls)
	}

	s.upload(t, nil, "late.bin", strings.NewReader("late"))
	uploaded := time.Now()
	for {
		_, err := os.Stat(missing)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("stat after the upload: %v", err)
		}
		if time.Since(uploaded) > DefaultEntryTimeout+500*time.Millisecond {
			t.Fatalf("a name uploaded after a miss still missing %v later", time.Since(uploaded))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("appeared %v after the upload", time.Since(uploaded))

	own := filepath.Join(dir, "own.bin")
	if _, err := os.Stat(own); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of own.bin before the upload: %v", err)
	}
	s.upload(t, store, "own.bin", strings.NewReader("own"))
	if got, err := os.ReadFile(own); err != nil || string(got) != "own" {
		t.Fatalf("own.bin right after this loader uploaded it: %q, %v", got, err)
	}
}
