package fs

import (
	"context"
	"log/slog"
	"syscall"
	"time"

	"github.com/azaion/loader/resources"
)

// Store is what the mount needs from the resource store; *resources.Store
// satisfies it. Every method may block and must honour ctx.
type Store interface {
	// Folders lists the folders: configured ∪ CDN listing ∪ local cache. It
	// answers even before login, so the tree stays visible.
	Folders(ctx context.Context) ([]string, error)
	// List lists the resource names in a folder.
	List(ctx context.Context, folder string) ([]string, error)
	// HasFolder reports whether a folder is listed or has resources; it
	// answers for a configured or cached folder without asking the CDN.
	HasFolder(ctx context.Context, folder string) (bool, error)
	// Open revalidates and opens the current version of a resource.
	Open(ctx context.Context, folder, name string) (*resources.Resource, error)
	// Known returns a resource's plaintext size as last seen on this
	// device, without asking anyone: before a login a known name is
	// listed with it, and only opening it is refused.
	Known(folder, name string) (size int64, ok bool)
}

// Defaults for the zero Options fields.
const (
	DefaultReadTimeout  = 30 * time.Second
	DefaultEntryTimeout = time.Second
)

// Options tune the mount. The zero value is usable.
type Options struct {
	// UID and GID own every file and directory.
	UID, GID uint32
	// AllowOther lets users other than the mounting one read the tree.
	AllowOther bool
	// Debug logs every FUSE request (noisy).
	Debug bool
	// Logger receives errors and notices; nil discards them.
	Logger *slog.Logger
	// ReadTimeout bounds every store call one FUSE request makes (a read, a
	// lookup, an open, a listing). A call that runs out gets EIO. The reads
	// of one open file share it: their reader gets EIO once it has waited
	// ReadTimeout without a byte, however many reads it waited in.
	// Default 30 s.
	ReadTimeout time.Duration
	// EntryTimeout is how long the kernel caches entries and attributes, and
	// how long a lookup's revalidation also serves the open that follows it.
	// Default 1 s.
	EntryTimeout time.Duration
	// FsName is the mount's source in /proc/mounts, like the config file
	// the loader runs with (gocryptfs shows its cipher directory there).
	// Default "azaion-loader".
	FsName string
	// OnRead, when set, is told of every read: the bytes it returned, how
	// long it took and its error (nil, or what was mapped to an errno).
	// The loader's metrics count with it.
	OnRead func(n int, d time.Duration, err error)
	// OnErrno, when set, is told of the errno of every lookup, listing,
	// open or read that the Store failed (Errno's mapping). The loader's
	// metrics count with it.
	OnErrno func(syscall.Errno)
}

func (o Options) withDefaults() Options {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.EntryTimeout <= 0 {
		o.EntryTimeout = DefaultEntryTimeout
	}
	if o.FsName == "" {
		o.FsName = "azaion-loader"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
