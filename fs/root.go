package fs

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azaion/loader/resources"
)

// loginNoticeEvery is how often, at most, the mount repeats that it is
// waiting for a login while files keep being refused.
const loginNoticeEvery = 10 * time.Minute

// root is the mount's root directory, one entry per folder, and holds the
// state every node shares.
type root struct {
	fusefs.Inode
	readOnly
	store   Store
	opt     Options
	mounted time.Time

	mu          sync.Mutex
	loginNotice time.Time // when the "log in" notice was last logged; zero after a success
}

func newRoot(store Store, opt Options) *root {
	return &root{store: store, opt: opt, mounted: time.Now()}
}

// call runs fn with ctx bounded by ReadTimeout, and returns when fn does or
// when the bound runs out (or the request is interrupted), whichever is
// first: a store that ignores its context cannot hang a FUSE request.
func call[T any](ctx context.Context, r *root, fn func(ctx context.Context) (T, error)) (T, error) {
	return callDrop(ctx, r, fn, nil)
}

// callDrop is call for a result that holds buffers: drop gets every result
// of fn that the caller does not, one that came with an error or one that
// came after the caller gave up, once fn has returned it. Until then fn
// may still be writing into what the result holds.
func callDrop[T any](ctx context.Context, r *root, fn func(ctx context.Context) (T, error), drop func(T)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opt.ReadTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn(ctx)
		ch <- result{v, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil && drop != nil {
			drop(res.v)
		}
		return res.v, res.err
	case <-ctx.Done():
		if drop != nil {
			go func() { drop((<-ch).v) }()
		}
		var zero T
		return zero, ctx.Err()
	}
}

// errno maps err with Errno and logs what a user needs to know: each EIO
// with folder, name and cause, and before login one notice (rate-limited)
// saying how to log in.
func (r *root) errno(op, folder, name string, err error) syscall.Errno {
	e := Errno(err)
	if e != 0 && r.opt.OnErrno != nil {
		r.opt.OnErrno(e)
	}
	switch e {
	case syscall.EIO:
		r.opt.Logger.Error("mount: "+op+" failed", "folder", folder, "name", name, "err", err)
	case syscall.EACCES:
		r.noticeLogin()
	}
	return e
}

func (r *root) noticeLogin() {
	r.mu.Lock()
	due := r.loginNotice.IsZero() || time.Since(r.loginNotice) >= loginNoticeEvery
	if due {
		r.loginNotice = time.Now()
	}
	r.mu.Unlock()
	if due {
		r.opt.Logger.Warn("mount: files stay locked until the loader logs in: POST /login to the control API, or put the credentials in the config")
	}
}

// opened notes a successful open, so that the next refusal logs the notice again.
func (r *root) opened() {
	r.mu.Lock()
	r.loginNotice = time.Time{}
	r.mu.Unlock()
}

// open revalidates a resource in the store.
func (r *root) open(ctx context.Context, folder, name string) (*resources.Resource, error) {
	return call(ctx, r, func(ctx context.Context) (*resources.Resource, error) {
		return r.store.Open(ctx, folder, name)
	})
}

func (r *root) dirAttr(out *fuse.Attr) {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	out.Owner = fuse.Owner{Uid: r.opt.UID, Gid: r.opt.GID}
	out.SetTimes(nil, &r.mounted, &r.mounted)
}

// Getattr describes the root directory.
func (r *root) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.dirAttr(&out.Attr)
	return 0
}

// Readdir lists the store's folders.
func (r *root) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	folders, err := call(ctx, r, r.store.Folders)
	if err != nil {
		return nil, r.errno("list folders", "", "", err)
	}
	return dirStream(folders, syscall.S_IFDIR), 0
}

// Lookup finds a folder: a listed one, or one the store can list names in.
func (r *root) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if !resources.ValidName(name) {
		return nil, syscall.ENOENT
	}
	ok, err := call(ctx, r, func(ctx context.Context) (bool, error) { return r.store.HasFolder(ctx, name) })
	if err != nil {
		return nil, r.errno("look up folder", name, "", err)
	}
	if !ok {
		return nil, syscall.ENOENT
	}
	r.dirAttr(&out.Attr)
	if ch := r.GetChild(name); ch != nil {
		return ch, 0
	}
	return r.NewInode(ctx, &dir{root: r, folder: name}, fusefs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Statfs reports an empty read-only file system with PROTOCOL §2's name limit.
func (r *root) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = 255
	return 0
}

// dirStream lists the valid names, sorted and without duplicates.
func dirStream(names []string, mode uint32) fusefs.DirStream {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	entries := make([]fuse.DirEntry, 0, len(names))
	for _, n := range names {
		if resources.ValidName(n) {
			entries = append(entries, fuse.DirEntry{Name: n, Mode: mode})
		}
	}
	return fusefs.NewListDirStream(entries)
}

// invalidate drops what the kernel caches of folder/name: its pages and
// attributes, and the directory entry, so that the next open looks it up
// and revalidates it.
func (r *root) invalidate(folder, name string) {
	d := r.GetChild(folder)
	if d == nil {
		return
	}
	if ch := d.GetChild(name); ch != nil {
		if f, ok := ch.Operations().(*file); ok {
			f.stale()
		}
		if e := ch.NotifyContent(0, 0); e != 0 && e != syscall.ENOENT {
			r.opt.Logger.Debug("mount: invalidate pages", "folder", folder, "name", name, "err", e)
		}
	}
	if e := d.NotifyEntry(name); e != 0 && e != syscall.ENOENT {
		r.opt.Logger.Debug("mount: invalidate entry", "folder", folder, "name", name, "err", e)
	}
}
