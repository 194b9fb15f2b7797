package fs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestWritesAreEROFS tries every write-type operation through the kernel
// and checks each fails with exactly EROFS and that nothing changed.
func TestWritesAreEROFS(t *testing.T) {
	s, want := fixture(t)
	_, mnt := mountT(t, s, Options{})
	file := filepath.Join(mnt, "models", "size-17")
	models := filepath.Join(mnt, "models")
	ops := writeOps(mnt, models, file, filepath.Join(mnt, "empty"))
	for name, op := range ops {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: err = %v, want EROFS", name, err)
		}
	}

	if got := names(t, mnt); !slices.Equal(got, []string{"empty", "extra", "models"}) {
		t.Errorf("ls / after the writes = %q", got)
	}
	if got := names(t, models); len(got) != len(sizes) {
		t.Errorf("ls models after the writes = %q", got)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, want["size-17"]) {
		t.Errorf("size-17 after the writes: %d bytes, %v; want the original 17", len(got), err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil || st.Mode != syscall.S_IFREG|0o444 {
		t.Errorf("size-17 after the writes: mode %o, %v", st.Mode, err)
	}
}

// writeOps is every write-type operation on a mount: on file, in (and
// on) its folder dir, in the root mnt, and rmdir of the folder empty.
func writeOps(mnt, dir, file, empty string) map[string]func() error {
	openFlags := func(p string, flags int) func() error {
		return func() error {
			f, err := os.OpenFile(p, flags, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}
	}
	now := time.Now()
	base := filepath.Base(file)
	ops := map[string]func() error{
		"open O_WRONLY":         openFlags(file, os.O_WRONLY),
		"open O_RDWR":           openFlags(file, os.O_RDWR),
		"open O_TRUNC":          openFlags(file, os.O_RDONLY|os.O_TRUNC),
		"open O_APPEND":         openFlags(file, os.O_WRONLY|os.O_APPEND),
		"create in folder":      openFlags(filepath.Join(dir, "new"), os.O_CREATE|os.O_WRONLY),
		"create in root":        openFlags(filepath.Join(mnt, "new"), os.O_CREATE|os.O_WRONLY),
		"create existing":       openFlags(file, os.O_CREATE|os.O_WRONLY),
		"create existing trunc": openFlags(file, os.O_CREATE|os.O_TRUNC|os.O_WRONLY),
		"write file":            func() error { return os.WriteFile(file, []byte("x"), 0o644) },
		"unlink":                func() error { return os.Remove(file) },
		"rmdir folder":          func() error { return syscall.Rmdir(empty) },
		"rename file":           func() error { return os.Rename(file, filepath.Join(dir, "renamed")) },
		"rename folder":         func() error { return os.Rename(dir, filepath.Join(mnt, "renamed")) },
		"mkdir in root":         func() error { return os.Mkdir(filepath.Join(mnt, "newfolder"), 0o755) },
		"mkdir in folder":       func() error { return os.Mkdir(filepath.Join(dir, "sub"), 0o755) },
		"symlink":               func() error { return os.Symlink(base, filepath.Join(dir, "link")) },
		"link":                  func() error { return os.Link(file, filepath.Join(dir, "hard")) },
		"mknod file":            func() error { return syscall.Mknod(filepath.Join(dir, "node"), syscall.S_IFREG|0o644, 0) },
		"mknod fifo":            func() error { return syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644) },
		"chmod file":            func() error { return os.Chmod(file, 0o777) },
		"chmod folder":          func() error { return os.Chmod(dir, 0o777) },
		"chown file":            func() error { return os.Chown(file, 1, 1) },
		"chown folder":          func() error { return os.Chown(dir, 1, 1) },
		"truncate":              func() error { return os.Truncate(file, 0) },
		"utimes":                func() error { return os.Chtimes(file, now, now) },
		"setxattr file":         func() error { return syscall.Setxattr(file, "user.azaion", []byte("x"), 0) },
		"setxattr folder":       func() error { return syscall.Setxattr(dir, "user.azaion", []byte("x"), 0) },
		"removexattr file":      func() error { return syscall.Removexattr(file, "user.azaion") },
		"removexattr folder":    func() error { return syscall.Removexattr(dir, "user.azaion") },
		"access W_OK":           func() error { return syscall.Access(file, 2) },
	}
	for name, op := range ops {
		ops[name] = retryEINTR(op)
	}
	return ops
}
