package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return l, fmt.Errorf("config: log_level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger logs text on a terminal and JSON otherwise (journald, files),
// unless format says which. When journal is set, w is journald's stream
// and every line starts with its syslog priority (sd-daemon(3)), so that
// journalctl -p err finds the errors.
func newLogger(w io.Writer, level, format string, journal bool) *slog.Logger {
	l, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: l}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	out := w
	var jh *journalHandler
	if journal {
		jh = &journalHandler{mu: new(sync.Mutex), buf: new(bytes.Buffer), w: w}
		out = jh.buf
	}
	var h slog.Handler = slog.NewJSONHandler(out, opts)
	if format == "text" {
		h = slog.NewTextHandler(out, opts)
	}
	if jh != nil {
		jh.Handler = h
		h = jh
	}
	return slog.New(h)
}

// journalStream reports whether w is the journal's stream: systemd sets
// JOURNAL_STREAM to the device and inode of the stream it connects to a
// service's stdout and stderr (systemd.exec(5)).
func journalStream(w io.Writer) bool {
	v := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if v == "" || !ok {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return v == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalHandler writes each record of its Handler, which formats into
// buf, with journald's "<N>" priority prefix: <3> error, <4> warning,
// <6> info, <7> debug.
type journalHandler struct {
	slog.Handler
	mu  *sync.Mutex
	buf *bytes.Buffer
	w   io.Writer
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	fmt.Fprintf(h.buf, "<%d>", priority(r.Level))
	if err := h.Handler.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.w.Write(h.buf.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(attrs)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(name)
	return &c
}

// priority is the syslog priority of a slog level.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}
