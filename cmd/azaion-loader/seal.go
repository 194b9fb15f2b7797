package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	fragPath := fset.String("fragment", "", "`FILE` holding the key fragment's bytes (required)")
	outPath := fset.String("o", "", "write the archive to `OUT`, whole or not at all (default: standard output)")
	if err := parseFlags(fset, sealUsage, stdout, args); err != nil {
		return err
	}
	switch {
	case *fragPath == "":
		return usageError{error: errors.New("seal: --fragment is required")}
	case fset.NArg() > 1:
		return usageError{error: fmt.Errorf("seal: unexpected argument %q", fset.Arg(1))}
	}
	fragment, err := os.ReadFile(*fragPath)
	if err != nil {
		return fmt.Errorf("seal: read the key fragment: %w", err)
	}
	if len(fragment) == 0 {
		return fmt.Errorf("seal: the key fragment file %s is empty", *fragPath)
	}

	src, total := stdin, int64(-1)
	if name := fset.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			total = st.Size()
		}
		src = f
	}

	dst := stdout
	if *outPath == "" {
		if isTerminal(stdout) {
			return usageError{error: errors.New("seal: refusing to write the binary archive to a terminal; use -o OUT or a pipe")}
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

	var onRead func(int64)
	if p := newProgress(stderr, "seal", total); p != nil {
		onRead = p.set
		defer func() {
			if err == nil {
				p.finish()
			} else {
				fmt.Fprintln(stderr) // end the progress line before the error
			}
		}()
	}
	if err := unlock.Seal(dst, src, fragment, onRead); err != nil {
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
	return nil
}
