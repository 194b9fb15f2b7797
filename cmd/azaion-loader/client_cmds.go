package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const clientExits = `
Exit codes: 0 ok, 1 failure, 2 usage, 3 not logged in or login refused (401),
4 not found (404), 5 no loader answers at --addr.
When the loader has a control_token, set AZAION_CONTROL_TOKEN to it.
`

const loginUsage = `Usage: azaion-loader login [--addr ADDR] [--email E] [--password-file FILE]

Logs the running loader in to the Resource API (POST /login). The email
comes from --email or AZAION_EMAIL, the password from --password-file or
AZAION_PASSWORD; on a terminal, what is missing is asked for (the password
without echo).

Example:
  azaion-loader login --email pilot@example.com
` + clientExits + `
Flags:
`

func runLogin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("login", flag.ContinueOnError)
	addr := clientFlags(fset)
	creds := credentialFlags(fset)
	if err := parseFlags(fset, loginUsage, stdout, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usageError{error: fmt.Errorf("login: unexpected argument %q", fset.Arg(0))}
	}
	e, p, err := creds(stdin, stderr)
	if err != nil {
		return err
	}
	if err := newClient(*addr).postJSON(ctx, "/login", map[string]string{"email": e, "password": p}, nil); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "logged in")
	return nil
}

const loadUsage = `Usage: azaion-loader load [--addr ADDR] FOLDER/NAME [-o FILE]

Downloads a resource's plaintext from the running loader (POST /load) to
FILE, written whole or not at all, or to standard output (not a terminal).
A progress line goes to standard error on a terminal.

Example:
  azaion-loader load models/yolo.onnx -o yolo.onnx
  azaion-loader load models/yolo.onnx | sha256sum
` + clientExits + `
Flags:
`

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fset := flag.NewFlagSet("load", flag.ContinueOnError)
	addr := clientFlags(fset)
	out := fset.String("o", "", "write to `FILE`, whole or not at all (default: standard output)")
	if err := parseFlags(fset, loadUsage, stdout, interspersed(args, "o", "addr")); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		return usageError{error: errors.New("load: want one FOLDER/NAME")}
	}
	folder, name, ok := strings.Cut(fset.Arg(0), "/")
	if !ok || folder == "" || name == "" || strings.Contains(name, "/") {
		return usageError{error: fmt.Errorf("load: %q is not FOLDER/NAME", fset.Arg(0))}
	}
	var dst io.Writer = stdout
	var tmp *os.File
	if *out == "" {
		if isTerminal(stdout) {
			return usageError{error: errors.New("load: refusing to write a binary to a terminal; use -o FILE or a pipe")}
		}
	} else {
		if tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".tmp-*"); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		defer func() {
			if err != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		dst = tmp
	}
	body := fmt.Sprintf(`{"folder":%q,"filename":%q}`, folder, name)
	resp, err := newClient(*addr).do(ctx, http.MethodPost, "/load/"+pathEscape(name), "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	p := newProgress(stderr, "load", resp.ContentLength)
	n, err := io.Copy(dst, progressReader{resp.Body, p})
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("load %s/%s: %d of %d bytes: %w", folder, name, n, resp.ContentLength, err)
	}
	p.finish()
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	return nil
}

const uploadUsage = `Usage: azaion-loader upload [--addr ADDR] FILE --folder FOLDER [--name NAME]

Uploads FILE through the running loader (POST /upload), which encrypts it
and stores its small part on the Resource API and its big part on the CDN.
NAME defaults to FILE's base name. A progress line goes to standard error
on a terminal.

Example:
  azaion-loader upload yolo.onnx --folder models
` + clientExits + `
Flags:
`

func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("upload", flag.ContinueOnError)
	addr := clientFlags(fset)
	folder := fset.String("folder", "", "the `FOLDER` to upload into (required)")
	name := fset.String("name", "", "the resource's `NAME` (default: FILE's base name)")
	if err := parseFlags(fset, uploadUsage, stdout, interspersed(args, "folder", "name", "addr")); err != nil {
		return err
	}
	if fset.NArg() != 1 || *folder == "" {
		return usageError{error: errors.New("upload: want FILE and --folder")}
	}
	f, err := os.Open(fset.Arg(0))
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if *name == "" {
		*name = filepath.Base(fset.Arg(0))
	}
	// The body is streamed: the folder field, then the file part.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	p := newProgress(stderr, "upload", st.Size())
	go func() {
		err := mw.WriteField("folder", *folder)
		if err == nil {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, *name))
			h.Set("Content-Type", "application/octet-stream")
			var part io.Writer
			if part, err = mw.CreatePart(h); err == nil {
				if _, err = io.Copy(part, progressReader{f, p}); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	resp, err := newClient(*addr).do(ctx, http.MethodPost, "/upload/"+pathEscape(*name), mw.FormDataContentType(), pr)
	pr.Close()
	if err != nil {
		return err
	}
	resp.Body.Close()
	p.finish()
	fmt.Fprintf(stdout, "uploaded %s/%s (%d bytes)\n", *folder, *name, st.Size())
	return nil
}

const unlockUsage = `Usage: azaion-loader unlock [--addr ADDR] [--email E] [--password-file FILE] [--no-wait]

Starts the Docker image unlock on the running loader (POST /unlock) and,
unless --no-wait, follows GET /unlock/status until it is ready (exit 0) or
failed (exit 1), with a progress line on a terminal. Credentials as for login.

Example:
  AZAION_EMAIL=pilot@example.com AZAION_PASSWORD=... azaion-loader unlock
` + clientExits + `
Flags:
`

type unlockState struct {
	State      string  `json:"state"`
	Error      *string `json:"error"`
	Step       string  `json:"step"`
	BytesDone  int64   `json:"bytes_decrypted"`
	BytesTotal int64   `json:"bytes_total"`
}

func runUnlock(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("unlock", flag.ContinueOnError)
	addr := clientFlags(fset)
	creds := credentialFlags(fset)
	noWait := fset.Bool("no-wait", false, "return once started")
	timeout := fset.Duration("timeout", 30*time.Minute, "give up waiting after this `DURATION`")
	if err := parseFlags(fset, unlockUsage, stdout, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usageError{error: fmt.Errorf("unlock: unexpected argument %q", fset.Arg(0))}
	}
	e, p, err := creds(stdin, stderr)
	if err != nil {
		return err
	}
	c := newClient(*addr)
	var st unlockState
	if err := c.postJSON(ctx, "/unlock", map[string]string{"email": e, "password": p}, &st); err != nil {
		return err
	}
	if *noWait {
		fmt.Fprintln(stdout, st.State)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var bar *progress
	for st.State != "ready" && st.State != "error" {
		if bar == nil && st.BytesTotal > 0 {
			bar = newProgress(stderr, "unlock", st.BytesTotal)
		}
		if bar != nil {
			bar.set(st.BytesDone)
		}
		select {
		case <-ctx.Done():
			return exitError{exitFailure, fmt.Errorf("unlock: still %s: %w", st.State, ctx.Err())}
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.getJSON(ctx, "/unlock/status", &st); err != nil {
			return err
		}
	}
	bar.finish()
	if st.State == "error" {
		msg := "unknown error"
		if st.Error != nil {
			msg = *st.Error
		}
		return exitError{exitFailure, fmt.Errorf("unlock failed at %s: %s", st.Step, msg)}
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

const statusUsage = `Usage: azaion-loader status [--addr ADDR] [--json]

Shows whether the running loader is logged in, its cache directory and the
unlock's state (GET /status, GET /unlock/status).

Example:
  azaion-loader status
` + clientExits + `
Flags:
`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("status", flag.ContinueOnError)
	addr := clientFlags(fset)
	asJSON := fset.Bool("json", false, "print one JSON object")
	if err := parseFlags(fset, statusUsage, stdout, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usageError{error: fmt.Errorf("status: unexpected argument %q", fset.Arg(0))}
	}
	c := newClient(*addr)
	var st struct {
		Status        string `json:"status"`
		Authenticated bool   `json:"authenticated"`
		ModelCacheDir string `json:"modelCacheDir"`
	}
	if err := c.getJSON(ctx, "/status", &st); err != nil {
		return err
	}
	var ul unlockState
	if err := c.getJSON(ctx, "/unlock/status", &ul); err != nil {
		return err
	}
	if *asJSON {
		return writeJSONLine(stdout, map[string]any{"status": st.Status, "authenticated": st.Authenticated,
			"modelCacheDir": st.ModelCacheDir, "unlock": ul})
	}
	fmt.Fprintf(stdout, "status:        %s\nauthenticated: %s\ncache dir:     %s\nunlock:        %s\n",
		st.Status, strconv.FormatBool(st.Authenticated), st.ModelCacheDir, ul.State)
	return nil
}

// interspersed moves flags that follow positional arguments in front of
// them (the flag package stops at the first positional), so that
// "load models/a.onnx -o a.onnx" works. valued names the flags that take a
// value.
func interspersed(args []string, valued ...string) []string {
	takes := map[string]bool{}
	for _, v := range valued {
		takes[v] = true
	}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takes[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(append(flags, "--"), pos...)
}

// credentialFlags declares --email and --password-file on fset; the func it
// returns resolves them after parsing (then AZAION_EMAIL and
// AZAION_PASSWORD, then a prompt on a terminal).
func credentialFlags(fset *flag.FlagSet) func(stdin io.Reader, stderr io.Writer) (email, password string, err error) {
	email := fset.String("email", "", "account `EMAIL` (AZAION_EMAIL)")
	pwFile := fset.String("password-file", "", "`FILE` holding the password (else AZAION_PASSWORD, else a prompt)")
	return func(stdin io.Reader, stderr io.Writer) (string, string, error) {
		pw, err := readFileSecret(*pwFile)
		if err != nil {
			return "", "", err
		}
		return credentialsFrom(*email, pw, stdin, stderr)
	}
}
