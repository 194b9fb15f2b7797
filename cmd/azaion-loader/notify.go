package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/azaion/loader/control"
)

// readyFDEnv names the descriptor on which a loader started by the FUSE
// helper form (helper.go) reports that its mount is live: it writes
// "ready\n" and closes it. The variable is removed once used, so that no
// child process inherits it.
const readyFDEnv = "AZAION_READY_FD"

// notifyReady tells whoever waits for the loader that it serves: systemd
// (Type=notify: READY=1, a no-op without $NOTIFY_SOCKET) and the helper
// form's parent. logOut is where a loader the helper started logs
// (helperLogTarget); its stderr is moved there.
func notifyReady(log *slog.Logger, logOut *os.File) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("systemd: notify READY=1", "err", err)
	}
	if v := os.Getenv(readyFDEnv); v != "" {
		os.Unsetenv(readyFDEnv)
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			log.Warn("ignoring malformed "+readyFDEnv, "value", v)
			return
		}
		// stderr is a pipe to the helper, which exits once told: move it
		// first, or a later log line would meet a closed pipe (SIGPIPE).
		detachStderr(log, logOut)
		f := os.NewFile(uintptr(fd), "ready")
		if _, err := f.Write([]byte("ready\n")); err != nil {
			log.Warn("report readiness to the mount helper", "err", err)
		}
		f.Close()
	}
}

// notifyStopping tells systemd that the loader is shutting down.
func notifyStopping(log *slog.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyStopping); err != nil {
		log.Warn("systemd: notify STOPPING=1", "err", err)
	}
}

// watchdog pings systemd's watchdog (WatchdogSec=) at half its interval
// while the control API answers GET /health, so a hung loader is restarted.
// It returns at once when no watchdog is set, and when ctx ends.
func watchdog(ctx context.Context, log *slog.Logger, addr string) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd: watchdog settings", "err", err)
	}
	if interval <= 0 {
		return
	}
	log.Info("systemd watchdog enabled", "interval", interval)
	period := interval / 2
	client := &http.Client{Timeout: period}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if healthy(ctx, client, addr) {
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		} else {
			log.Warn("control API does not answer /health; not pinging the watchdog")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func healthy(ctx context.Context, client *http.Client, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", control.ProbeUserAgent) // logged at DEBUG, not INFO
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// helperLogEnv names the file a loader started by the FUSE helper form logs
// to once it is ready (mount option log=FILE).
const helperLogEnv = "AZAION_HELPER_LOG"

// detachStderr points the daemonized loader's stderr, which was a pipe to
// the helper that started it and is about to close, at its log (a panic
// is written there).
func detachStderr(log *slog.Logger, logOut *os.File) {
	if logOut == nil {
		return
	}
	if err := unix.Dup2(int(logOut.Fd()), 2); err != nil {
		log.Warn("helper: redirect stderr", "err", err)
	}
}

// helperLogTarget opens the log of a loader started by the FUSE helper
// form: the file named by $AZAION_HELPER_LOG, else the journal, else
// /dev/null. journal reports the journal's stream, which takes priority
// prefixes.
func helperLogTarget() (f *os.File, journal bool, err error) {
	if path := os.Getenv(helperLogEnv); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("mount option log: %w", err)
		}
		return f, false, nil
	}
	// journald's stream socket, as systemd-cat uses it: a header (the
	// identifier, no unit, priority 6 by default, level prefixes parsed,
	// no forwarding), then lines.
	conn, err := net.DialTimeout("unix", "/run/systemd/journal/stdout", time.Second)
	if err != nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		return f, false, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "azaion-loader\n\n6\n1\n0\n0\n0\n"); err != nil {
		return nil, false, fmt.Errorf("journal: %w", err)
	}
	f, err = conn.(*net.UnixConn).File()
	return f, err == nil, err
}
