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
	"syscall"
)

const usage = `azaion-loader serves Azaion resources (AI models) decrypted, through a
read-only FUSE mount and an HTTP control API.

Usage:
  azaion-loader serve [--config FILE] [flags]   run the loader (the daemon)
  azaion-loader demo                            run everything on loopback, no account needed
  azaion-loader seal --fragment FILE [-o OUT] [TAR|-]
                                                write the encrypted Docker image archive
  azaion-loader version                         print the version

Each subcommand takes --help. Example:
  AZAION_API_URL=https://api.example AZAION_RESOURCE_KEY_FILE=/etc/azaion/key \
    azaion-loader serve --mount /mnt/azaion
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "azaion-loader:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is a command line that does not parse: exit code 2.
type usageError struct{ error }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no subcommand")}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "seal":
		return runSeal(args[1:], stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
}
