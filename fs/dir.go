package fs

import (
	"context"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azaion/loader/resources"
)

// dir is one folder: a directory of resources.
type dir struct {
	fusefs.Inode
	readOnly
	root   *root
	folder string
}

// Getattr describes the folder.
func (d *dir) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.root.dirAttr(&out.Attr)
	return 0
}

// Readdir lists the folder's resources as the store lists them.
func (d *dir) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	names, err := call(ctx, d.root, func(ctx context.Context) ([]string, error) {
		return d.root.store.List(ctx, d.folder)
	})
	if err != nil {
		return nil, d.root.errno("list", d.folder, "", err)
	}
	return dirStream(names, syscall.S_IFREG), 0
}

// Lookup opens (and so revalidates) a resource, listed or not: a known path
// opens even when the CDN cannot be listed.
func (d *dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if !resources.ValidName(name) {
		return nil, syscall.ENOENT
	}
	res, err := d.root.open(ctx, d.folder, name)
	if err != nil {
		e := d.root.errno("look up", d.folder, name, err)
		if ch := d.GetChild(name); ch != nil && e == syscall.EIO {
			if f, ok := ch.Operations().(*file); ok {
				// The store cannot be reached: stat keeps answering with
				// the version last seen; the next open revalidates again.
				f.attr(&out.Attr)
				return ch, 0
			}
		}
		if e == syscall.EACCES {
			return d.known(ctx, name, out)
		}
		return nil, e
	}
	d.root.opened()
	if ch := d.GetChild(name); ch != nil {
		if f, ok := ch.Operations().(*file); ok && f.adopt(res) {
			f.attr(&out.Attr)
			return ch, 0
		}
	}
	// New, or a new version of a file that is open with an older one: a
	// new inode, which replaces the old under the name; the old one lives
	// on for its open handles until the kernel forgets it.
	f := &file{root: d.root, folder: d.folder, name: name}
	f.update(res)
	f.attr(&out.Attr)
	return d.NewInode(ctx, f, fusefs.StableAttr{Mode: syscall.S_IFREG}), 0
}

// known answers a lookup before login: a name seen on this device shows
// with its last known size and mode (names and sizes are not secret), and
// only opening it is refused (EACCES, by Open, which asks the store).
func (d *dir) known(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	size, ok := d.root.store.Known(d.folder, name)
	ch := d.GetChild(name)
	var f *file
	if ch != nil {
		f, _ = ch.Operations().(*file)
	}
	switch {
	case f != nil:
		// Logged out: the version held stays listed, and is opened only
		// after a login revalidates it.
		f.mu.Lock()
		f.fetched = time.Time{}
		if f.res == nil && ok {
			f.known = size
		}
		f.mu.Unlock()
	case !ok:
		return nil, syscall.EACCES
	default:
		f = &file{root: d.root, folder: d.folder, name: name, known: size, modified: time.Now()}
		ch = d.NewInode(ctx, f, fusefs.StableAttr{Mode: syscall.S_IFREG})
	}
	f.attr(&out.Attr)
	return ch, 0
}
