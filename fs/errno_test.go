package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azaion/loader/resources"
)

func TestErrno(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{resources.ErrNotFound, syscall.ENOENT},
		{fmt.Errorf("get small part: %w", resources.ErrNotFound), syscall.ENOENT},
		{resources.ErrBadName, syscall.ENOENT},
		{fmt.Errorf("open: %w", resources.ErrNotLoggedIn), syscall.EACCES},
		{context.Canceled, syscall.EINTR},
		{fmt.Errorf("range get: %w", context.Canceled), syscall.EINTR},
		{context.DeadlineExceeded, syscall.EIO},
		{fmt.Errorf("cdn: %w", resources.ErrUpstream), syscall.EIO},
		{resources.ErrDecrypt, syscall.EIO},
		{resources.ErrUnauthorized, syscall.EIO},
		{resources.ErrHardwareMismatch, syscall.EIO},
		{io.ErrUnexpectedEOF, syscall.EIO},
		{errors.New("anything else"), syscall.EIO},
		{syscall.EROFS, syscall.EROFS},
	} {
		if got := Errno(c.err); got != c.want {
			t.Errorf("Errno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestReadOnlyHandlers calls every write-type handler directly: the
// kernel refuses most writes on a read-only mount before they reach them.
func TestReadOnlyHandlers(t *testing.T) {
	ctx := context.Background()
	for _, n := range []readOnly{(&root{}).readOnly, (&dir{}).readOnly, (&file{}).readOnly} {
		var out fuse.EntryOut
		var attr fuse.AttrOut
		_, werr := n.Write(ctx, nil, []byte("x"), 0)
		_, _, _, cerr := n.Create(ctx, "x", 0, 0o644, &out)
		_, merr := n.Mkdir(ctx, "x", 0o755, &out)
		_, nerr := n.Mknod(ctx, "x", syscall.S_IFREG|0o644, 0, &out)
		_, lerr := n.Link(ctx, nil, "x", &out)
		_, serr := n.Symlink(ctx, "t", "x", &out)
		for name, e := range map[string]syscall.Errno{
			"write": werr, "create": cerr, "mkdir": merr, "mknod": nerr, "link": lerr, "symlink": serr,
			"setattr":     n.Setattr(ctx, nil, &fuse.SetAttrIn{}, &attr),
			"setxattr":    n.Setxattr(ctx, "user.x", []byte("x"), 0),
			"removexattr": n.Removexattr(ctx, "user.x"),
			"allocate":    n.Allocate(ctx, nil, 0, 1, 0),
			"unlink":      n.Unlink(ctx, "x"),
			"rmdir":       n.Rmdir(ctx, "x"),
			"rename":      n.Rename(ctx, "x", nil, "y", 0),
		} {
			if e != syscall.EROFS {
				t.Errorf("%s = %v, want EROFS", name, e)
			}
		}
	}
	f := &file{}
	for _, flags := range []uint32{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC, syscall.O_WRONLY | syscall.O_APPEND} {
		if _, _, e := f.Open(ctx, flags); e != syscall.EROFS {
			t.Errorf("Open(%#o) = %v, want EROFS", flags, e)
		}
	}
}
