package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/azaion/loader/cmd/internal/buildinfo"
	"github.com/azaion/loader/control"
	"github.com/azaion/loader/control/unlock"
	"github.com/azaion/loader/fs"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/cache"
	"github.com/azaion/loader/resources/cdn"
)

const serveUsage = `Usage: azaion-loader serve [--config FILE] [flags]

Runs the loader: the control API on --listen and, with --mount, the
read-only FUSE mount of the decrypted resources. It logs in at start when
email and password are configured, else on POST /login.

Example:
  azaion-loader serve --config /etc/azaion/loader.yaml --mount /mnt/azaion

Flags (each overrides its config key and environment variable):
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServe(args, stdout)
	if err != nil {
		return err
	}
	// A loader started by the mount helper logs to its log destination from
	// the start: its stderr is the terminal of mount's caller until it is
	// ready, which gets only the one line of a failure.
	logOut, journal := stderr, journalStream(stderr)
	var detached *os.File
	if os.Getenv(readyFDEnv) != "" {
		if detached, journal, err = helperLogTarget(); err != nil {
			return err
		}
		defer detached.Close()
		logOut = detached
	}
	log := newLogger(logOut, cfg.LogLevel, cfg.LogFormat, journal)
	bi := buildinfo.Get()
	log.Info("azaion-loader starting", "version", bi.Version, "commit", bi.Commit, "go", bi.GoVersion)
	setMemoryLimit()
	l, err := startLoader(cfg, log)
	if err != nil {
		return err
	}
	// Ready once the mount is live, the control API listens and the login
	// at start has had its first try, so that a unit ordered after this one
	// (or a script after mount) finds the files readable.
	select {
	case <-l.loginTried:
	case <-time.After(2*time.Duration(cfg.APITimeout) + 5*time.Second):
		log.Warn("login at start still running; reporting ready")
	case <-ctx.Done():
	}
	notifyReady(log, detached)
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go watchdog(wctx, log, l.addr)
	select {
	case <-ctx.Done():
		log.Info("stopping", "signal", context.Cause(ctx))
	case err = <-l.served:
		log.Error("control API stopped", "err", err)
	case <-l.unmounted:
		log.Info("stopping: the mount was unmounted")
	}
	notifyStopping(log)
	l.Close()
	return err
}

// memoryLimit is the loader's soft memory limit unless GOMEMLIMIT sets
// one: Go's GC otherwise lets the heap grow to twice its live bytes, and
// the read path's buffers (read-ahead, fetches, FUSE requests) are live only
// briefly, so the limit keeps the peak RSS near the live set. It is soft:
// a heap that needs more gets it, at the cost of more GC work. (64 MiB
// made the GC run often enough to slow cold reads in make bench-quick;
// 80 MiB kept the peak RSS at 88 MiB.)
const memoryLimit = 80 << 20

func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

func parseServe(args []string, stdout io.Writer) (Config, error) {
	fset := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fset.String("config", os.Getenv("AZAION_CONFIG"), "YAML config `FILE` (AZAION_CONFIG)")
	var flags Config
	var folders string
	serveFlags(fset, &flags, &folders)
	if err := parseFlags(fset, serveUsage, stdout, args); err != nil {
		return Config{}, err
	}
	if fset.NArg() > 0 {
		return Config{}, usageError{error: fmt.Errorf("serve: unexpected argument %q", fset.Arg(0))}
	}
	if *configPath != "" {
		// The mount's source in /proc/mounts, as gocryptfs shows its
		// cipher directory.
		if abs, err := filepath.Abs(*configPath); err == nil {
			flags.source = abs
		}
	}
	flags.Folders = splitList(folders)
	cfg, err := loadConfig(*configPath, os.Getenv, fset, &flags)
	cfg.source = flags.source
	return cfg, err
}

// loader is a running loader: the Store, the control server and the mount.
type loader struct {
	log    *slog.Logger
	store  *resources.Store
	task   *unlock.Task
	srv    *http.Server
	addr   string
	mount  *fs.Server
	served chan error
	cancel context.CancelFunc
	// loginTried is closed once the login at start has had its first try
	// (at once without configured credentials).
	loginTried chan struct{}
	// unmounted is closed when the mount goes away without Close (umount).
	unmounted chan struct{}
	metrics   *metrics
	// prefetch fetches the prefetch config list after each login.
	prefetch     *control.Prefetcher
	prefetchList [][2]string
}

// startLoader wires the parts and starts them: the control API listens and
// the mount is live when it returns.
func startLoader(cfg Config, log *slog.Logger) (*loader, error) {
	hardware := cfg.Hardware
	if hardware == "" {
		hardware = resources.Hardware()
	}
	c, err := cache.Open(cfg.CacheDir, cache.Options{Logger: log, FetchTimeout: time.Duration(cfg.ReadTimeout), MaxBytes: cfg.CacheMaxBytes,
		Streams: cfg.CDNStreams})
	if err != nil {
		return nil, fmt.Errorf("cache_dir: %w", err)
	}
	m := newMetrics(c)
	apiOpts := api.Options{Timeout: time.Duration(cfg.APITimeout), Logger: log,
		HTTPClient: &http.Client{Transport: m.loader.Transport("api", api.Operation, api.Operations,
			m.apiTransport(http.DefaultTransport.(*http.Transport).Clone()))}}
	client, err := api.New(cfg.APIURL, apiOpts)
	if err != nil {
		return nil, fmt.Errorf("api_url: %w", err)
	}
	store := resources.NewStore(resources.StoreConfig{
		API:         client,
		Cache:       c,
		ResourceKey: resources.Secret(cfg.ResourceKey),
		Hardware:    hardware,
		Folders:     cfg.Folders,
		// A GET that sends nothing for a third of read_timeout resumes, so
		// that a stalled stream is retried within the read's bound.
		CDN: cdn.Options{RangeTimeout: time.Duration(cfg.ReadTimeout) / 3, CallTimeout: time.Duration(cfg.ReadTimeout), Logger: log,
			HTTPClient: &http.Client{Transport: m.loader.Transport("cdn", cdn.Operation, cdn.Operations, cdn.NewTransport())}},
		Logger:          log,
		ReadAheadBudget: cfg.ReadAheadBudget,
	})
	task := unlock.New(unlock.Config{
		ArchivePath: cfg.Unlock.ImagesPath,
		Images:      cfg.Unlock.Images,
		Docker:      cfg.Unlock.Docker,
		NewClient: func() unlock.KeyClient {
			c, _ := api.New(cfg.APIURL, apiOpts) // the URL was checked above
			return c
		},
		Logger: log,
	})
	m.reg.MustRegister(&unlockCollector{t: task})
	ctx, cancel := context.WithCancel(context.Background())
	l := &loader{log: log, store: store, task: task, cancel: cancel,
		served: make(chan error, 1), loginTried: make(chan struct{}), unmounted: make(chan struct{}), metrics: m}
	l.prefetch = control.NewPrefetcher(control.PrefetchConfig{Store: store, Context: ctx, Logger: log, Registry: m.reg})
	l.prefetchList, _ = control.ParsePrefetch(cfg.Prefetch) // checked by resolve
	h := control.NewHandler(control.Config{Store: countLogins(store, m, l.afterLogin), Unlock: task, MaxUploadBytes: cfg.MaxUploadBytes, Logger: log, Registry: m.reg,
		Listen: cfg.Listen, Token: cfg.ControlToken, Version: buildinfo.Get().Version, Build: buildInfo(), Prefetcher: l.prefetch})
	ln, err := control.Listen(cfg.Listen)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("listen: %w", err)
	}
	l.srv, l.addr = control.NewServer(cfg.Listen, h), ln.Addr().String()
	if cfg.Mount != "" {
		uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
		if cfg.UID != nil {
			uid = *cfg.UID
		}
		if cfg.GID != nil {
			gid = *cfg.GID
		}
		l.mount, err = fs.Mount(cfg.Mount, store, fs.Options{
			UID: uid, GID: gid, AllowOther: cfg.AllowOther, Logger: log, FsName: cfg.source,
			ReadTimeout: time.Duration(cfg.ReadTimeout), OnRead: m.mountRead, OnErrno: m.loader.Errno,
		})
		if err != nil {
			ln.Close()
			cancel()
			return nil, fmt.Errorf("mount: %w", err)
		}
		store.Watch(l.mount.Invalidate)
		log.Info("mounted", "dir", cfg.Mount)
		go func() {
			// Wait returns when the kernel ends the mount: an umount
			// from outside ends the loader, as FUSE daemons do.
			l.mount.Wait()
			close(l.unmounted)
		}()
	}
	go func() { l.served <- l.srv.Serve(ln) }()
	log.Info("control API listening", "addr", l.addr, "cache_dir", c.Dir())
	if cfg.Email != "" {
		go l.loginAtStart(ctx, cfg.Email, cfg.Password)
	} else {
		close(l.loginTried)
		if cfg.Mount != "" {
			log.Info("not logged in: files under the mount open after POST /login, or set email and password in the config")
		}
	}
	return l, nil
}

// loginAtStart logs in with the configured credentials, retrying while the
// Resource API cannot be reached, and giving up on refused credentials.
func (l *loader) loginAtStart(ctx context.Context, email, password string) {
	wait := 2 * time.Second
	tried := sync.OnceFunc(func() { close(l.loginTried) })
	defer tried()
	for {
		err := l.store.Login(ctx, email, password)
		l.metrics.login(err)
		tried()
		if err == nil {
			l.afterLogin()
			return
		}
		if !errors.Is(err, resources.ErrUpstream) {
			l.log.Error("login with the configured credentials failed; POST /login to retry", "err", err)
			return
		}
		l.log.Warn("login failed, retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// afterLogin queues the prefetch config list: run after each successful
// login, so that a device fills its cache whenever it gets a link and a
// session, and a new version published since is fetched too.
func (l *loader) afterLogin() {
	if len(l.prefetchList) > 0 {
		l.log.Info("prefetching the configured resources", "count", len(l.prefetchList))
		l.prefetch.Add(l.prefetchList)
	}
}

// Close stops the control server gracefully and unmounts.
func (l *loader) Close() {
	l.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		l.srv.Close()
	}
	if l.mount != nil {
		select {
		case <-l.unmounted: // gone already
		default:
			if err := l.mount.Unmount(); err != nil {
				l.log.Error("unmount", "err", err)
			}
		}
		l.mount.Wait()
	}
	if err := l.task.Close(ctx); err != nil {
		l.log.Error("unlock: stop", "err", err)
	}
	if err := l.store.Close(); err != nil {
		l.log.Error("cache: save", "err", err)
	}
}
