package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsafeDir: the cache directory, or a folder directory in it, is not
// one the loader may trust (a symbolic link, another user's, writable by
// others).
var ErrUnsafeDir = errors.New("cache: unsafe directory")

// openRoot creates dir (mode 0700) if it is missing, refuses it if it is a
// symbolic link, and opens it as the root every cache path is opened in.
func openRoot(dir string, log *slog.Logger) (*os.Root, error) {
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		log.Error("cache: refusing cache_dir", "path", dir, "why", "a symbolic link")
		return nil, fmt.Errorf("%w: cache_dir %s is a symbolic link", ErrUnsafeDir, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if !fi.IsDir() {
		log.Error("cache: refusing cache_dir", "path", dir, "why", "not a directory")
		return nil, fmt.Errorf("%w: cache_dir %s is not a directory", ErrUnsafeDir, dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	// The directory opened is the one looked at, not one a link put in
	// its place meanwhile.
	if rfi, err := root.Stat("."); err != nil || !os.SameFile(fi, rfi) {
		root.Close()
		log.Error("cache: refusing cache_dir", "path", dir, "why", "replaced while being opened")
		return nil, fmt.Errorf("%w: cache_dir %s replaced while being opened", ErrUnsafeDir, dir)
	}
	if err := root.Chmod(".", 0o700); err != nil {
		root.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	return root, nil
}

// tryLock takes dir/.lock for this Cache, or returns nil when another
// process (or another Cache of this one) holds it.
func (c *Cache) tryLock() *os.File {
	f, err := c.root.OpenFile(lockName, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return nil
	}
	return f
}

const lockName = ".lock"

// checkFolder checks folder's directory, creating it first when create is
// set: it must be a directory (not a symbolic link), owned by the loader's
// user and not writable by group or others. A refusal is logged once per
// folder, with the path and why.
func (c *Cache) checkFolder(folder string, create bool) error {
	fi, err := c.root.Lstat(folder)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err = c.root.Mkdir(folder, 0o700); err == nil || errors.Is(err, fs.ErrExist) {
			fi, err = c.root.Lstat(folder)
		}
	}
	if err != nil {
		return err
	}
	why := ""
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		why = "a symbolic link"
	case !fi.IsDir():
		why = "not a directory"
	case fi.Mode().Perm()&0o022 != 0:
		why = fmt.Sprintf("writable by group or others (mode %v)", fi.Mode().Perm())
	case st != nil && int(st.Uid) != os.Geteuid():
		why = fmt.Sprintf("owned by uid %d, not the loader's %d", st.Uid, os.Geteuid())
	default:
		return nil
	}
	path := c.dir + "/" + folder
	c.mu.Lock()
	logged := c.refused[folder] == why
	c.refused[folder] = why
	c.mu.Unlock()
	if !logged {
		c.log.Error("cache: refusing folder directory, serving it from the network", "path", path, "why", why)
	}
	return fmt.Errorf("%w: %s is %s", ErrUnsafeDir, path, why)
}

// folders lists the folder directories of the cache that checkFolder
// accepts.
func (c *Cache) folders() ([]string, error) {
	dirs, err := c.readDir(".")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		if validName(d.Name()) && c.checkFolder(d.Name(), false) == nil {
			out = append(out, d.Name())
		}
	}
	return out, nil
}

// readDir lists dir in the cache's root.
func (c *Cache) readDir(dir string) ([]fs.DirEntry, error) {
	d, err := c.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// eachFile calls fn for every file of every folder directory of the cache.
func (c *Cache) eachFile(fn func(folder string, f fs.DirEntry)) {
	folders, err := c.folders()
	if err != nil {
		return
	}
	for _, folder := range folders {
		files, _ := c.readDir(folder)
		for _, f := range files {
			fn(folder, f)
		}
	}
}

// tempPrefixes are the temp files the cache writes: uploads' big parts
// (writer.go) and sidecars on their way to their place (meta.go).
var tempPrefixes = []string{".upload-", ".meta-"}

// removeTemps deletes the temp files in the folder directories: all of
// them when this process holds the cache's lock (no other writer can be
// using one: they are what a killed writer left), else those older than
// staleTemp. A sidecar's temp file is scrubbed first: one of an older
// format may hold a small part.
func (c *Cache) removeTemps(all bool) {
	c.eachFile(func(folder string, f fs.DirEntry) {
		prefix := ""
		for _, p := range tempPrefixes {
			if strings.HasPrefix(f.Name(), p) {
				prefix = p
			}
		}
		if prefix == "" || !f.Type().IsRegular() {
			return
		}
		if info, err := f.Info(); err != nil || (!all && time.Since(info.ModTime()) <= staleTemp) {
			return
		}
		rel := folder + "/" + f.Name()
		if prefix == ".meta-" {
			c.scrub(rel)
		}
		if c.root.Remove(rel) == nil {
			c.log.Info("cache: removed a temp file left behind", "path", c.dir+"/"+rel)
		}
	})
}

// scrub overwrites a file with zeros and syncs it, before its removal, so
// that what it held (a small part, in a sidecar of an older format) does
// not stay in the file system's free blocks. On a file system that writes
// out of place (copy-on-write, SSD wear levelling) this is best effort.
func (c *Cache) scrub(rel string) {
	f, err := c.root.OpenFile(rel, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	zeros := make([]byte, 64<<10)
	for left := fi.Size(); left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := f.Write(zeros[:n]); err != nil {
			return
		}
		left -= n
	}
	f.Sync()
}
