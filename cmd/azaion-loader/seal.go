package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/azaion/loader/control/unlock"
)

const sealUsage = `Usage: azaion-loader seal --fragment FILE [-o OUT] [TAR|-]

Encrypts a "docker save" tar into the image archive that POST /unlock loads
(PROTOCOL §5): IV ‖ AES-256-CBC(SHA-256(fragment), IV, PKCS7(tar)).
The tar is read from TAR, or from standard input when TAR is "-" or absent.
The archive goes to OUT, written whole or not at all, or to standard output.
FILE holds the exact bytes of GET /binary-split/key-fragment; nothing, not
even a trailing newline, is trimmed.

Example:
  curl -fsS -H "Authorization: Bearer $TOKEN" -o fragment.bin \
    https://api.example/binary-split/key-fragment
  docker save azaion/detections:1.4 azaion/annotations:1.4 |
    azaion-loader seal --fragment fragment.bin -o /opt/azaion/images.enc

Flags:
`

// runSeal is the seal subcommand. A progress line goes to stderr only when
// stderr is a terminal.
func runSeal(args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fset := flag.NewFlagSet("seal", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, sealUsage); fset.PrintDefaults() }
	fragPath := fset.String("fragment", "", "file holding the key fragment's bytes (required)")
	outPath := fset.String("o", "", "write the archive to this file (default: standard output)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	switch {
	case *fragPath == "":
		fset.Usage()
		return usageError{errors.New("seal: --fragment is required")}
	case fset.NArg() > 1:
		fset.Usage()
		return usageError{fmt.Errorf("seal: unexpected argument %q", fset.Arg(1))}
	}
	fragment, err := os.ReadFile(*fragPath)
	if err != nil {
		return fmt.Errorf("seal: read the key fragment: %w", err)
	}
	if len(fragment) == 0 {
		return fmt.Errorf("seal: the key fragment file %s is empty", *fragPath)
	}

	// A terminal is a character device other than /dev/null (golang.org/x/term
	// is not a dependency).
	isTerminal := func(w io.Writer) bool {
		f, ok := w.(*os.File)
		if !ok {
			return false
		}
		st, err := f.Stat()
		if err != nil || st.Mode()&os.ModeCharDevice == 0 {
			return false
		}
		null, err := os.Stat(os.DevNull)
		return err != nil || !os.SameFile(st, null)
	}

	src := stdin
	if name := fset.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		defer f.Close()
		src = f
	}

	dst := stdout
	if *outPath == "" {
		if isTerminal(stdout) {
			return usageError{errors.New("seal: refusing to write the binary archive to a terminal; use -o OUT or a pipe")}
		}
	} else {
		// A temporary file beside OUT, renamed over it once complete.
		tmp, cerr := os.CreateTemp(filepath.Dir(*outPath), "."+filepath.Base(*outPath)+".tmp-*")
		if cerr != nil {
			return fmt.Errorf("seal: %w", cerr)
		}
		defer func() {
			if err != nil { // the named result: any failure from here on
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		dst = tmp
	}

	var progress func(int64)
	var done int64
	if isTerminal(stderr) {
		var last time.Time
		progress = func(n int64) {
			if done = n; time.Since(last) >= 200*time.Millisecond {
				last = time.Now()
				fmt.Fprintf(stderr, "\rseal: %.1f MiB read", float64(n)/(1<<20))
			}
		}
	}
	if err := unlock.Seal(dst, src, fragment, progress); err != nil {
		return err
	}
	if tmp, ok := dst.(*os.File); ok && *outPath != "" {
		if err := tmp.Chmod(0o644); err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("seal: write %s: %w", *outPath, err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("seal: write %s: %w", *outPath, err)
		}
		if err := os.Rename(tmp.Name(), *outPath); err != nil {
			return fmt.Errorf("seal: %w", err)
		}
	}
	if progress != nil {
		fmt.Fprintf(stderr, "\rseal: %.1f MiB read, archive written\n", float64(done)/(1<<20))
	}
	return nil
}
