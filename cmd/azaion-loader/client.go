package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Exit codes of the client subcommands, for scripts (the README lists them).
const (
	exitFailure      = 1 // anything else: a 4xx/5xx not below, a failed write
	exitUsage        = 2 // the command line does not parse
	exitUnauthorized = 3 // 401: not logged in, or the login was refused
	exitNotFound     = 4 // 404: no such resource (load), no archive (unlock)
	exitUnreachable  = 5 // no loader answers at --addr
)

// exitError carries a client subcommand's exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// client talks to a running loader's control API.
type client struct {
	base  string
	token string // control_token of the loader, from $AZAION_CONTROL_TOKEN
	hc    *http.Client
}

// clientFlags adds --addr to fset; the default is $AZAION_LISTEN or the
// loader's default listen address.
func clientFlags(fset *flag.FlagSet) *string {
	def := os.Getenv("AZAION_LISTEN")
	if def == "" {
		def = defaults().Listen
	}
	return fset.String("addr", def, "the loader's control API address (AZAION_LISTEN)")
}

func newClient(addr string) *client {
	base := addr
	if !strings.Contains(base, "://") {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		base = "http://" + addr
	}
	return &client{base: strings.TrimSuffix(base, "/"), token: os.Getenv("AZAION_CONTROL_TOKEN"), hc: &http.Client{}}
}

// do sends a request; a status other than 200 becomes an exitError with the
// loader's detail.
func (c *client) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, exitError{exitUsage, err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, exitError{exitFailure, ctx.Err()}
		}
		return nil, exitError{exitUnreachable, fmt.Errorf("no loader answers at %s: %w", c.base, errors.Unwrap(err))}
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct{ Detail string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Detail == "" {
		e.Detail = strings.TrimSpace(string(b))
	}
	code := exitFailure
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		code = exitUnauthorized
	case http.StatusNotFound:
		code = exitNotFound
	}
	return nil, exitError{code, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, http.StatusText(resp.StatusCode), e.Detail)}
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func (c *client) postJSON(ctx context.Context, path string, in, out any) error {
	b, _ := json.Marshal(in)
	resp, err := c.do(ctx, http.MethodPost, path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// parseClientFlags parses a client subcommand's flags, printing its usage
// on --help and on errors.
func parseClientFlags(fset *flag.FlagSet, usage string, stderr io.Writer, args []string) error {
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, usage); fset.PrintDefaults() }
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}

// credentialsFrom finds the email and password: flags, then $AZAION_EMAIL and
// $AZAION_PASSWORD, then a prompt on the terminal (the password unechoed).
func credentialsFrom(email, password string, stdin io.Reader, stderr io.Writer) (string, string, error) {
	if email == "" {
		email = os.Getenv("AZAION_EMAIL")
	}
	if password == "" {
		password = os.Getenv("AZAION_PASSWORD")
	}
	in, isFile := stdin.(*os.File)
	tty := isFile && interactive(in)
	if email == "" {
		if !tty {
			return "", "", usageError{errors.New("no email: pass --email or set AZAION_EMAIL")}
		}
		fmt.Fprint(stderr, "Email: ")
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil {
			return "", "", err
		}
		email = strings.TrimSpace(line)
	}
	if password == "" {
		if !tty {
			return "", "", usageError{errors.New("no password: set AZAION_PASSWORD, pass --password-file, or run on a terminal to be asked")}
		}
		p, err := readPassword(in, stderr, "Password: ")
		fmt.Fprintln(stderr)
		if err != nil {
			return "", "", err
		}
		password = p
	}
	return email, password, nil
}

// readPassword shows prompt once echo is off on the terminal f, and reads
// a line from it.
func readPassword(f *os.File, stderr io.Writer, prompt string) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func readFileSecret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", exitError{exitFailure, err}
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// interactive reports whether f is a terminal (a character device other
// than /dev/null).
func interactive(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

func interactiveWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && interactive(f)
}

// progress prints "\rOP: done/total MiB (p%)" to a terminal at most five
// times a second; it prints nothing when w is not a terminal.
type progress struct {
	w           io.Writer
	op          string
	total, done int64
	last        time.Time
}

func newProgress(w io.Writer, op string, total int64) *progress {
	if !interactiveWriter(w) {
		return nil
	}
	return &progress{w: w, op: op, total: total}
}

func (p *progress) add(n int) {
	if p == nil {
		return
	}
	p.done += int64(n)
	if time.Since(p.last) >= 200*time.Millisecond {
		p.last = time.Now()
		p.print()
	}
}

func (p *progress) print() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s: %.1f/%.1f MiB (%d%%)", p.op, float64(p.done)/(1<<20), float64(p.total)/(1<<20), p.done*100/p.total)
	} else {
		fmt.Fprintf(p.w, "\r%s: %.1f MiB", p.op, float64(p.done)/(1<<20))
	}
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	p.print()
	fmt.Fprintln(p.w)
}

// progressReader counts what is read through it.
type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}

func pathEscape(name string) string { return url.PathEscape(name) }

func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
