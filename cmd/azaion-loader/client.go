package main

import (
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
)

// Exit codes of the client subcommands, for scripts (the README lists them).
const (
	exitFailure        = 1 // anything else: a 4xx/5xx not below, a failed write
	exitUsage          = 2 // the command line does not parse
	exitUnauthorized   = 3 // 401: not logged in, or the login was refused
	exitNotFound       = 4 // 404: no such resource (load), no archive (unlock)
	exitUnreachable    = 5 // no loader answers at --addr
	exitPrefetchFailed = 6 // prefetch: a resource could not be fetched
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
	return fset.String("addr", def, "`ADDR` of the loader's control API (AZAION_LISTEN)")
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
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
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

// getJSONTimeout bounds one GET of a small JSON document (/status,
// /unlock/status), so that a poll of a loader that stopped answering fails
// rather than waiting out the whole command's --timeout.
const getJSONTimeout = 30 * time.Second

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, getJSONTimeout)
	defer cancel()
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

// credentialsFrom finds the email and password: flags, then $AZAION_EMAIL and
// $AZAION_PASSWORD, then a prompt on the terminal (the password unechoed).
func credentialsFrom(email, password string, stdin io.Reader, stderr io.Writer) (string, string, error) {
	if email == "" {
		email = os.Getenv("AZAION_EMAIL")
	}
	if password == "" {
		password = os.Getenv("AZAION_PASSWORD")
	}
	in, _ := stdin.(*os.File)
	tty := isTerminal(in)
	if email == "" {
		if !tty {
			return "", "", usageError{error: errors.New("no email: pass --email or set AZAION_EMAIL")}
		}
		fmt.Fprint(stderr, "Email: ")
		var err error
		if email, err = readLine(in); err != nil {
			return "", "", err
		}
	}
	if password == "" {
		if !tty {
			return "", "", usageError{error: errors.New("no password: set AZAION_PASSWORD, pass --password-file, or run on a terminal to be asked")}
		}
		p, err := readPassword(in, stderr, "Password: ")
		if err != nil {
			return "", "", err
		}
		password = p
	}
	return email, password, nil
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

func pathEscape(name string) string { return url.PathEscape(name) }

func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
