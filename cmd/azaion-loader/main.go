// Command azaion-loader logs in to the Azaion Resource API and serves its
// encrypted resources decrypted: through a read-only FUSE mount and a small
// HTTP control API. main parses configuration, wires the parts together and
// handles signals; the work is done in resources, fs and control.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `azaion-loader serves Azaion resources (AI models) decrypted, through a
read-only FUSE mount and an HTTP control API.

Usage:
  azaion-loader serve [--config FILE] [flags]   run the loader (the daemon)
  azaion-loader CONFIG MOUNTPOINT [-o OPTIONS]  the FUSE mount helper form (mount -t fuse.azaion-loader)
  azaion-loader demo                            run everything on loopback, no account needed
  azaion-loader seal --fragment FILE [-o OUT] [TAR|-]
                                                write the encrypted Docker image archive
  azaion-loader version                         print the version

Clients of a running loader (--addr, default $AZAION_LISTEN or 127.0.0.1:8080):
  azaion-loader login [--email E]               log the loader in
  azaion-loader load FOLDER/NAME [-o FILE]      download a resource's plaintext
  azaion-loader upload FILE --folder F [--name N]
                                                encrypt and upload a resource
  azaion-loader prefetch FOLDER/NAME...         fetch resources into the cache, wait until done
  azaion-loader unlock                          unlock the Docker images, wait until ready
  azaion-loader status [--json]                 logged in? cache dir, unlock state

Each command takes --help and --version; "azaion-loader help CMD" is the
same as "azaion-loader CMD --help" ("help mount" for the helper form).
Exit codes: 0 ok, 1 failure, 2 usage; the clients also 3 for 401, 4 for 404,
5 when no loader answers, 6 when prefetch could not fetch a resource.

Example:
  AZAION_API_URL=https://api.example AZAION_RESOURCE_KEY_FILE=/etc/azaion/key \
    azaion-loader serve --mount /mnt/azaion
  mount -t fuse.azaion-loader /etc/azaion/loader.yaml /mnt/azaion -o ro,allow_other
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		printError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// printError writes err as one line, and a usage error's hint under it.
// flag.ErrHelp (help or the version was asked for) and a reportedError
// (said already) print nothing.
func printError(w io.Writer, err error) {
	var re reportedError
	if errors.Is(err, flag.ErrHelp) || errors.As(err, &re) {
		return
	}
	fmt.Fprintln(w, "azaion-loader:", err)
	var ue usageError
	if errors.As(err, &ue) && ue.hint != "" {
		fmt.Fprintln(w, ue.hint)
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var re reportedError
	if errors.As(err, &re) {
		return re.code
	}
	return exitFailure
}

// reportedError ends the process with code after its cause was shown
// already (the mount helper passes on its daemon's failure line).
type reportedError struct{ code int }

func (e reportedError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// commands are the names run dispatches, for "did you mean".
var commands = []string{"serve", "demo", "seal", "version", "login", "load", "upload", "prefetch", "unlock", "status", "help"}

func isCommand(s string) bool {
	for _, c := range commands {
		if c == s {
			return true
		}
	}
	return false
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage) // no command: the usage is the error
		return reportedError{exitUsage}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd := args[0]
	if isHelperForm(args) {
		return runHelper(args, stderr)
	}
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "seal":
		err = runSeal(args[1:], stdin, stdout, stderr)
	case "login":
		err = runLogin(ctx, args[1:], stdin, stdout, stderr)
	case "load":
		err = runLoad(ctx, args[1:], stdout, stderr)
	case "upload":
		err = runUpload(ctx, args[1:], stdout, stderr)
	case "prefetch":
		err = runPrefetch(ctx, args[1:], stdout, stderr)
	case "unlock":
		err = runUnlock(ctx, args[1:], stdin, stdout, stderr)
	case "status":
		err = runStatus(ctx, args[1:], stdout, stderr)
	case "version":
		err = runVersion(args[1:], stdout)
	case "-v", "--version", "-version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help", "-h", "--help", "-help":
		if len(args) == 1 || cmd != "help" {
			fmt.Fprint(stdout, usage)
			return nil
		}
		switch args[1] {
		case "mount":
			fmt.Fprint(stdout, helperUsage)
			return nil
		case "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
		if !isCommand(args[1]) {
			return unknownCommand(args[1])
		}
		return run([]string{args[1], "--help"}, stdin, stdout, stderr)
	default:
		if strings.HasPrefix(cmd, "-") {
			return usageError{error: fmt.Errorf("unknown flag %s", cmd), hint: helpHint("")}
		}
		return unknownCommand(cmd)
	}
	return withHint(err, cmd)
}

func unknownCommand(cmd string) error {
	msg := fmt.Sprintf("unknown command %q", cmd)
	if s := suggest(cmd, commands); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return usageError{error: errors.New(msg), hint: helpHint("")}
}

const versionUsage = `Usage: azaion-loader version

Prints the version and the commit the binary was built from.

Flags:
`

func runVersion(args []string, stdout io.Writer) error {
	fset := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fset, versionUsage, stdout, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usageError{error: fmt.Errorf("version: unexpected argument %q", fset.Arg(0))}
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}
