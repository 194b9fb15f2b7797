package fs

import "errors"

// Errors Mount returns for a mount point it refuses. Test them with errors.Is.
var (
	// ErrNotEmpty: the mount point holds files; mounting over them would hide them.
	ErrNotEmpty = errors.New("mount point is not empty")
	// ErrMounted: something is already mounted there and answers (a live mount,
	// perhaps another loader).
	ErrMounted = errors.New("mount point is already mounted")
)
