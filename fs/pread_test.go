package fs

import (
	"errors"
	"syscall"
)

// preadRetry is pread(2) that tries again on EINTR, as Go's os package and
// Python do. A read that a signal interrupts (the test process gets
// SIGCHLD, SIGURG and the like) stops waiting and returns EINTR: that is
// the mount's contract for an interrupted reader, not a failure.
func preadRetry(fd int, p []byte, off int64) (int, error) {
	for {
		n, err := syscall.Pread(fd, p, off)
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// retryEINTR runs op again while it fails with EINTR: a lookup on the way
// to the refused write may be interrupted by a signal too.
func retryEINTR(op func() error) func() error {
	return func() error {
		for {
			if err := op(); !errors.Is(err, syscall.EINTR) {
				return err
			}
		}
	}
}
