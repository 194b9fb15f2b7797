package fs

import (
	"context"
	"syscall"

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
