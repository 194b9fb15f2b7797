package fs

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/bufpool"
)

// file is one resource. It keeps the version its last lookup or open
// revalidated, and what the kernel's page cache holds of it.
type file struct {
	fusefs.Inode
	readOnly
	root         *root
	folder, name string

	mu       sync.Mutex
	res      *resources.Resource // nil until an open succeeds
	known    int64               // the size last seen on this device, while res is nil
	fetched  time.Time           // when res was revalidated; zero makes the next open revalidate
	modified time.Time           // when this mount first saw res's version: the file's mtime
	cached   string              // the version the kernel's pages hold; "" when unknown or mixed
	timedOut span                // the last read that ran out of ReadTimeout
	handles  int                 // open handles (an mmap holds one until unmapped)
}

// span is a byte range read at a time.
type span struct {
	at       time.Time
	off, end int64
}

// retryWindow is how long after a read runs out of time a read of the same
// bytes fails at once: the kernel retries a failed readahead page by page,
// and each retry would wait out ReadTimeout again.
const retryWindow = time.Second

// handle is one open file. The reads of it that reach the mount are served
// from the version it opened; the kernel's page cache is shared by every
// handle of the file, which is why file.cached tracks what filled it.
type handle struct {
	res   *resources.Resource
	stall stallClock
	f     *file
}

// Release ends a handle: once a file has none, it may take another version.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.f.mu.Lock()
	h.f.handles--
	h.f.mu.Unlock()
	return 0
}

// adopt makes res the file's version unless the file is open with another
// one: the kernel keeps one page cache and one size per inode, so handles
// of two versions on one inode would read each other's pages. It reports
// whether res is now the file's version; when not, the caller gives res an
// inode of its own.
func (f *file) adopt(res *resources.Resource) bool {
	f.mu.Lock()
	busy := f.handles > 0 && f.res != nil && (f.res.Version != res.Version || res.Version == "")
	f.mu.Unlock()
	if busy {
		return false
	}
	f.update(res)
	return true
}

// update installs a revalidated version. A different version drops the
// kernel's pages and attributes, so that no one reads the old bytes from
// its cache.
func (f *file) update(res *resources.Resource) {
	f.mu.Lock()
	changed := f.res != nil && (f.res.Version != res.Version || res.Version == "")
	if f.res == nil || changed {
		f.modified = time.Now()
	}
	if changed {
		f.cached = ""
	}
	f.res, f.fetched = res, time.Now()
	f.mu.Unlock()
	if changed {
		if e := f.NotifyContent(0, 0); e != 0 && e != syscall.ENOENT {
			f.root.opt.Logger.Debug("mount: invalidate pages", "folder", f.folder, "name", f.name, "err", e)
		}
	}
}

// stale makes the next open revalidate and drop the kernel's pages.
func (f *file) stale() {
	f.mu.Lock()
	f.fetched, f.cached = time.Time{}, ""
	f.mu.Unlock()
}

func (f *file) attr(out *fuse.Attr) {
	f.mu.Lock()
	size, mtime := f.known, f.modified
	if f.res != nil {
		size = f.res.Size()
	}
	f.mu.Unlock()
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
	out.Blksize = 4096
	out.Owner = fuse.Owner{Uid: f.root.opt.UID, Gid: f.root.opt.GID}
	out.SetTimes(nil, &mtime, &mtime)
}

// Getattr reports the exact plaintext size of the last revalidated version.
func (f *file) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.attr(&out.Attr)
	return 0
}

// Open refuses writing, revalidates unless the lookup just did, and lets
// the kernel keep its pages when they hold the version being opened.
func (f *file) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	f.mu.Lock()
	res := f.res
	fresh := res != nil && !f.fetched.IsZero() && time.Since(f.fetched) < f.root.opt.EntryTimeout
	f.mu.Unlock()
	if !fresh {
		var err error
		if res, err = f.root.open(ctx, f.folder, f.name); err != nil {
			return nil, 0, f.root.errno("open", f.folder, f.name, err)
		}
		if !f.adopt(res) {
			// Open with an older version: the kernel retries an open
			// that fails with ESTALE once, looking the name up again,
			// and the lookup gives the new version an inode of its own.
			return nil, 0, syscall.ESTALE
		}
	}
	f.root.opened()
	f.mu.Lock()
	if f.res != res {
		// Another lookup installed another version since: as above.
		f.mu.Unlock()
		return nil, 0, syscall.ESTALE
	}
	keep := res.Version != "" && f.cached == res.Version
	f.cached = res.Version
	f.handles++
	f.mu.Unlock()
	var out uint32
	if keep {
		out = fuse.FOPEN_KEEP_CACHE
	}
	return &handle{res: res, f: f}, out, 0
}

// readBufs holds read buffers, one per read in progress (the kernel sends
// up to go-fuse's MaxBackground at once); one whose read was given up on
// comes back once that read has returned.
var readBufs = bufpool.New(RequestSize, 16)

// Read decrypts through the opened version with the request's context,
// bounded by ReadTimeout. Bytes that read-ahead has decrypted already are
// sent at once from its buffers; any other read runs in a goroutine of its
// own (see call), so that a read stuck below fails with EIO; the bound is
// the handle's (see stallClock), so a reader waits at most ReadTimeout
// without a byte, however many reads it waits in.
func (f *file) Read(ctx context.Context, fh fusefs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*handle)
	if !ok {
		return nil, syscall.EBADF
	}
	f.mu.Lock()
	last := f.timedOut
	f.mu.Unlock()
	if time.Since(last.at) < retryWindow && off < last.end && last.off < off+int64(len(dest)) {
		return nil, syscall.EIO
	}
	start := time.Now()
	s, ok := h.res.ReadyAt(ctx, len(dest), off)
	if !ok {
		var err error
		// A read given up on keeps its span (and the buffer in it) until
		// it has returned.
		s, err = callStalled(ctx, f.root, &h.stall, func(ctx context.Context) (resources.Span, error) {
			s, err := h.res.ReadSpan(ctx, len(dest), off, readBufs)
			if err == io.EOF {
				err = nil
			}
			return s, err
		}, resources.Span.Release)
		if err != nil {
			if on := f.root.opt.OnRead; on != nil {
				on(0, time.Since(start), err)
			}
			if err == errStalled {
				return nil, syscall.EIO // logged when the bound ran out
			}
			if errors.Is(err, context.DeadlineExceeded) {
				f.mu.Lock()
				f.timedOut = span{time.Now(), off, off + int64(len(dest))}
				f.mu.Unlock()
			}
			return nil, f.root.errno("read", f.folder, f.name, err)
		}
	}
	if on := f.root.opt.OnRead; on != nil {
		on(s.Len(), time.Since(start), nil)
	}
	f.mu.Lock()
	if h.res.Version != f.cached {
		f.cached = "" // an older handle filled pages with its version
	}
	f.mu.Unlock()
	return spanResult{s}, 0
}

// spanResult is a read's bytes, sent to the kernel from where they are (the
// read-ahead's plaintext, or a buffer of readBufs) with one writev rather
// than copied into go-fuse's buffer first, and handed back once sent.
// go-fuse writes a ReadResult with a Slices method as a vector.
type spanResult struct{ s resources.Span }

func (r spanResult) Slices() ([][]byte, fuse.Status) { return r.s.Bytes, fuse.OK }
func (r spanResult) Size() int                       { return r.s.Len() }

// Bytes is for a go-fuse that does not take slices: the bytes in one piece.
func (r spanResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	if len(r.s.Bytes) == 1 {
		return r.s.Bytes[0], fuse.OK
	}
	buf = buf[:0]
	for _, b := range r.s.Bytes {
		buf = append(buf, b...)
	}
	return buf, fuse.OK
}

func (r spanResult) Done() { r.s.Release() }
