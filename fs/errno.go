package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/azaion/loader/resources"
)

// Errno is the one map from errors to errnos: ENOENT only for a resource
// that does not exist or a name that cannot exist, EACCES before login,
// EINTR for a cancelled (interrupted) request, EROFS for a refused write,
// and EIO for everything else — a transient failure is never ENOENT.
func Errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, resources.ErrNotFound), errors.Is(err, resources.ErrBadName):
		return syscall.ENOENT
	case errors.Is(err, resources.ErrNotLoggedIn):
		return syscall.EACCES
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, syscall.EROFS):
		return syscall.EROFS
	default:
		return syscall.EIO
	}
}
