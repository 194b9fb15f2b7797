package fs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Server is a live mount of the store, serving its FUSE requests. (The
// function that makes one is Mount, so the type cannot share its name.)
type Server struct {
	dir    string
	server *fuse.Server
	root   *root
	log    *slog.Logger

	mu      sync.Mutex
	unmount bool // Unmount has run
}

// Mount mounts store read-only on dir, which must be an empty directory.
// A stale mount on dir, left by a killed loader (stat gives ENOTCONN), is
// detached first; a live mount is refused with ErrMounted and a non-empty
// directory with ErrNotEmpty.
func Mount(dir string, store Store, opt Options) (*Server, error) {
	opt = opt.withDefaults()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := prepare(abs, opt.Logger); err != nil {
		return nil, err
	}
	r := newRoot(store, opt)
	entry := opt.EntryTimeout
	fsOpt := &fusefs.Options{
		EntryTimeout: &entry,
		AttrTimeout:  &entry,
		// The kernel remembers a miss as long as an entry: a program that
		// probes a missing name in a loop asks the Resource API once per
		// EntryTimeout, not once per probe. An upload through this loader
		// drops the miss at once (Invalidate).
		NegativeTimeout: &entry,
		UID:             opt.UID,
		GID:             opt.GID,
		Logger:          slog.NewLogLogger(opt.Logger.Handler(), slog.LevelDebug),
		MountOptions:    MountOptions(opt),
	}
	server, err := fusefs.Mount(abs, r, fsOpt)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	if err := SetReadAhead(abs); err != nil {
		opt.Logger.Debug("mount: read-ahead stays at the kernel's default", "err", err)
	}
	opt.Logger.Info("mount: serving resources", "dir", abs)
	return &Server{dir: abs, server: server, root: r, log: opt.Logger}, nil
}

// RequestSize is the largest FUSE read request and the kernel's read-ahead
// on the mount: 1 MiB, the cache's chunk size.
const RequestSize = 1 << 20

// MountOptions are the go-fuse mount options of the loader's mount, for
// benchmarks that compare it with other file systems mounted alike.
//
// go-fuse passes MaxWrite to the kernel as max_read and as max_pages, so
// MaxWrite, not MaxReadAhead alone, is what lifts READ requests past its
// 128 KiB default (the kernel caps them at fs.fuse.max_pages_limit pages).
func MountOptions(opt Options) fuse.MountOptions {
	opt = opt.withDefaults()
	return fuse.MountOptions{
		AllowOther:         opt.AllowOther,
		Debug:              opt.Debug,
		Logger:             slog.NewLogLogger(opt.Logger.Handler(), slog.LevelDebug),
		FsName:             opt.FsName,
		Name:               "azaion-loader", // the kernel type is fuse.azaion-loader, as in fstab
		MaxWrite:           RequestSize,
		MaxReadAhead:       RequestSize,
		DirectMount:        true,
		DirectMountFlags:   syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
		Options:            []string{"ro", "default_permissions"},
		DisableReadDirPlus: true, // a listing must not open every resource
	}
}

// SetReadAhead raises the kernel's read-ahead on the FUSE mount at dir to
// RequestSize. The kernel starts a FUSE mount at its 128 KiB default and
// only ever lowers it at INIT, whatever MaxReadAhead asks; the mount's
// backing device in /sys/class/bdi takes the larger value (as root).
func SetReadAhead(dir string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return fmt.Errorf("read-ahead: %w", err)
	}
	dev := uint64(st.Dev)
	major, minor := (dev>>8)&0xfff|(dev>>32)&^0xfff, dev&0xff|(dev>>12)&^0xff
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", major, minor)
	if err := os.WriteFile(p, []byte(fmt.Sprint(RequestSize>>10)), 0); err != nil {
		return fmt.Errorf("read-ahead: %w", err)
	}
	return nil
}

// prepare checks that dir can take the mount, and detaches stale mounts
// from it: their server is gone, so stat or statfs gives ENOTCONN (stat
// only once the kernel's cached attributes expire; statfs always asks).
func prepare(dir string, log *slog.Logger) error {
	for range 3 { // mounts may be stacked
		_, err := os.Stat(dir)
		stale := disconnected(err)
		if err != nil && !stale {
			return fmt.Errorf("mount %s: %w", dir, err)
		}
		if !stale {
			mounted, err := isMountPoint(dir)
			if err != nil {
				return fmt.Errorf("mount %s: %w", dir, err)
			}
			if !mounted {
				return checkEmpty(dir)
			}
			var st syscall.Statfs_t
			if !disconnected(syscall.Statfs(dir, &st)) {
				return fmt.Errorf("mount %s: %w", dir, ErrMounted)
			}
		}
		log.Warn("mount: detaching a stale mount left by a loader that died", "dir", dir)
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("mount %s: detach stale mount: %w", dir, err)
		}
	}
	return fmt.Errorf("mount %s: %w", dir, ErrMounted)
}

// disconnected reports an error of a FUSE mount whose server is gone.
func disconnected(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}

func checkEmpty(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err == nil {
		return fmt.Errorf("mount %s: %w", dir, ErrNotEmpty)
	} else if err != io.EOF {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether something is mounted on dir, per
// /proc/self/mountinfo.
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// Dir is the absolute mount point.
func (m *Server) Dir() string { return m.dir }

// Unmount unmounts cleanly, retrying while the mount is busy, and detaches
// it lazily when it stays busy (the kernel finishes it when the last open
// file closes). It is idempotent.
func (m *Server) Unmount() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unmount {
		return nil
	}
	err := m.server.Unmount() // five tries, with growing pauses
	if err == nil {
		// Once, in a loaded CI run, a test's mount outlived an Unmount
		// that reported no error (cause not found; go-fuse answers nil,
		// for one, when it no longer holds a mount point). Look before
		// saying it is gone.
		if still, _ := isMountPoint(m.dir); still {
			err = errors.New("still mounted after unmount")
		}
	}
	if err != nil {
		m.log.Warn("mount: not unmounted, detaching lazily", "dir", m.dir, "err", err)
		if derr := syscall.Unmount(m.dir, syscall.MNT_DETACH); derr != nil && !errors.Is(derr, syscall.EINVAL) {
			return fmt.Errorf("unmount %s: %w", m.dir, errors.Join(err, derr))
		}
	}
	m.unmount = true
	m.log.Info("mount: unmounted", "dir", m.dir)
	return nil
}

// Wait blocks until the mount is gone: unmounted here or from outside.
func (m *Server) Wait() { m.server.Wait() }

// notifyWait bounds how long Invalidate waits for the kernel.
const notifyWait = 5 * time.Second

// Invalidate tells the kernel that folder/name has a new version (uploaded
// through this loader): it drops the file's cached pages, attributes and
// entry, so the next open sees the new size and bytes. Call it with no
// store lock held; it waits at most a few seconds for the kernel.
func (m *Server) Invalidate(folder, name string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.root.invalidate(folder, name)
	}()
	select {
	case <-done:
	case <-time.After(notifyWait):
		m.log.Warn("mount: the kernel is slow to drop a cached file", "folder", folder, "name", name)
	}
}
