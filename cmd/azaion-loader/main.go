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
  azaion-loader unlock                          unlock the Docker images, wait until ready
  azaion-loader status [--json]                 logged in? cache dir, unlock state

Each subcommand takes --help ("azaion-loader help mount" for the helper form).
Exit codes: 0 ok, 1 failure, 2 usage; the clients also 3 for 401, 4 for 404,
5 when no loader answers.

Example:
  AZAION_API_URL=https://api.example AZAION_RESOURCE_KEY_FILE=/etc/azaion/key \
    azaion-loader serve --mount /mnt/azaion
  mount -t fuse.azaion-loader /etc/azaion/loader.yaml /mnt/azaion -o ro,allow_other
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
		return exitUsage
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// usageError is a command line that does not parse: exit code 2.
type usageError struct{ error }

// subcommands are the first arguments that are not the mount helper form.
var subcommands = map[string]bool{
	"serve": true, "demo": true, "seal": true, "version": true, "help": true,
	"login": true, "load": true, "upload": true, "unlock": true, "status": true,
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no subcommand")}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if !subcommands[args[0]] && isHelperForm(args) {
		return runHelper(args, stderr)
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "seal":
		return runSeal(args[1:], stdin, stdout, stderr)
	case "login":
		return runLogin(ctx, args[1:], stdin, stdout, stderr)
	case "load":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "upload":
		return runUpload(ctx, args[1:], stdout, stderr)
	case "unlock":
		return runUnlock(ctx, args[1:], stdin, stdout, stderr)
	case "status":
		return runStatus(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "mount" {
			fmt.Fprint(stdout, helperUsage)
			return nil
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
}
