package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
)

// MaxConns caps the control API's open connections, idle keep-alive ones
// included: past it, a new connection waits in the kernel's backlog until
// one closes, so no number of clients can take more memory or descriptors.
const MaxConns = 64

// Listen listens on a control API address: host:port for TCP, or
// unix:/path for a unix socket that only its owner may use (mode 0600). A
// socket left behind by a loader that died is replaced; one that a live
// process still answers on is not: Listen fails. At most MaxConns
// connections are accepted at once.
func Listen(addr string) (net.Listener, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(ln, MaxConns), nil
}

func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("listen %s: the socket path must be absolute", addr)
	}
	return listenUnix(filepath.Clean(path))
}

func listenUnix(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("listen unix:%s: %w", path, err)
	}
	if err := checkStale(path); err != nil {
		return nil, err
	}
	// Bind inside a fresh 0700 directory, set the mode, then move the
	// socket into place: no one can connect before its mode is 0600, and a
	// stale socket is replaced in one step.
	tmpDir, err := os.MkdirTemp(dir, ".loader-sock-")
	if err != nil {
		return nil, fmt.Errorf("listen unix:%s: %w", path, err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen unix:%s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen unix:%s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen unix:%s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen unix:%s: %w", path, err)
	}
	return &unixListener{UnixListener: ln, path: path, fi: fi}, nil
}

// checkStale fails when path is not a socket or a live process answers on
// it; a socket no one answers on is stale and will be replaced.
func checkStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen unix:%s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen unix:%s: exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen unix:%s: another process is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listen unix:%s: cannot tell whether it is in use: %w", path, err)
	}
	return nil
}

// unixListener reports the socket's real path and removes it on Close,
// unless another process has replaced it meanwhile.
type unixListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
		os.Remove(l.path)
	}
	return err
}
