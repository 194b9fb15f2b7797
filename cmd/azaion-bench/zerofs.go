package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azaion/loader/fs"
)

// zeroRoot is baseline P1(a), the FUSE ceiling: one read-only file of zeros
// served from memory, mounted with the loader's mount options.
type zeroRoot struct {
	fusefs.Inode
	size int64
}

type zeroFile struct {
	fusefs.Inode
	size int64
}

var zeros = make([]byte, fs.RequestSize)

func (r *zeroRoot) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, &zeroFile{size: r.size}, fusefs.StableAttr{Mode: syscall.S_IFREG})
	r.AddChild("zero", ch, false)
}

func (f *zeroFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = uint64(f.size)
	return 0
}

func (f *zeroFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (f *zeroFile) Read(ctx context.Context, fh fusefs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := min(int64(len(dest)), max(f.size-off, 0))
	return fuse.ReadResultData(zeros[:n]), 0
}

// runZeroFS mounts the zero file system on dir and serves it until SIGTERM.
func runZeroFS(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: azaion-bench zerofs DIR SIZE")
	}
	size, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		return err
	}
	server, err := fusefs.Mount(args[0], &zeroRoot{size: size}, &fusefs.Options{MountOptions: fs.MountOptions(fs.Options{})})
	if err != nil {
		return err
	}
	if err := fs.SetReadAhead(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, "zerofs:", err)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; server.Unmount() }()
	server.Wait()
	return nil
}
