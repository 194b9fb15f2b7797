package main

import (
	"regexp"
	"strings"
	"testing"
)

// testCLI checks what the command line shows: help on stdout and nothing
// on stderr, flags as they are typed, `help CMD` the same as `CMD --help`,
// --version on every command, and a usage error as exactly two lines on
// stderr (the error, then the hint to the help) with exit 2.
func testCLI(t *testing.T, bin string) {
	env := cleanEnv()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runBinary(t, bin, env, args...)
	}

	// The top level's help.
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, stdout, stderr := run(args...)
		if code != 0 || stdout != usage || stderr != "" {
			t.Errorf("%q: exit %d, stdout %d lines, stderr %q; want exit 0 and the usage on stdout only", args, code, strings.Count(stdout, "\n"), stderr)
		}
	}
	// No command: the usage on stderr, exit 2.
	if code, stdout, stderr := run(); code != 2 || stdout != "" || stderr != usage {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q; want exit 2 and the usage on stderr", code, stdout, stderr)
	}

	// Each command's help: stdout, its usage line, every flag as typed, and
	// `help CMD` prints the same.
	helpLast := regexp.MustCompile(`\n  -h, --help +print this help\n$`)
	singleDash := regexp.MustCompile(`(^|\s)-[a-z][a-z-]+`)
	for _, cmd := range []string{"serve", "demo", "seal", "version", "login", "load", "upload", "prefetch", "unlock", "status"} {
		code, stdout, stderr := run(cmd, "--help")
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: azaion-loader "+cmd) {
			t.Errorf("%s --help: exit %d, stderr %q, stdout:\n%s", cmd, code, stderr, stdout)
			continue
		}
		_, flags, ok := strings.Cut(stdout, "Flags")
		if !ok || !strings.Contains(flags, "\n  --version ") || !helpLast.MatchString(flags) {
			t.Errorf("%s --help: no flags section with --version and -h, --help:\n%s", cmd, stdout)
		}
		if m := singleDash.FindString(flags); m != "" {
			t.Errorf("%s --help shows a long flag with one dash (%q):\n%s", cmd, m, flags)
		}
		if cmd != "version" && !strings.Contains(stdout, "\nExample:\n") {
			t.Errorf("%s --help has no example:\n%s", cmd, stdout)
		}
		code2, stdout2, stderr2 := run("help", cmd)
		if code2 != 0 || stdout2 != stdout || stderr2 != "" {
			t.Errorf("help %s: exit %d, stderr %q, stdout differs from %s --help:\n%s", cmd, code2, stderr2, cmd, stdout2)
		}
		// --version works on every command.
		code, stdout, stderr = run(cmd, "--version")
		if code != 0 || stderr != "" || !regexp.MustCompile(`^azaion-loader \S+ \(commit \S+, go\S+\)\n$`).MatchString(stdout) {
			t.Errorf("%s --version: exit %d, stdout %q, stderr %q", cmd, code, stdout, stderr)
		}
	}
	if code, stdout, _ := run("help", "mount"); code != 0 || stdout != helperUsage {
		t.Errorf("help mount: exit %d, stdout:\n%s", code, stdout)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if code, stdout, stderr := run(args...); code != 0 || stderr != "" || !strings.HasPrefix(stdout, "azaion-loader ") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want one line", args, code, stdout, stderr)
		}
	}

	// Usage errors: exactly the error and the hint on stderr, exit 2.
	const topHint = "Run 'azaion-loader --help' for usage.\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, "azaion-loader: unknown command \"bogus\"\n" + topHint},
		{[]string{"sever", "--mount", "/mnt"}, "azaion-loader: unknown command \"sever\" (did you mean \"serve\"?)\n" + topHint},
		{[]string{"statsu"}, "azaion-loader: unknown command \"statsu\" (did you mean \"status\"?)\n" + topHint},
		{[]string{"help", "bogus"}, "azaion-loader: unknown command \"bogus\"\n" + topHint},
		{[]string{"--bogus"}, "azaion-loader: unknown flag --bogus\n" + topHint},
		{[]string{"serve", "--no-such-flag"}, "azaion-loader: serve: unknown flag --no-such-flag\nRun 'azaion-loader serve --help' for usage.\n"},
		{[]string{"serve", "--mout", "/mnt"}, "azaion-loader: serve: unknown flag --mout (did you mean --mount?)\nRun 'azaion-loader serve --help' for usage.\n"},
		{[]string{"serve", "extra"}, "azaion-loader: serve: unexpected argument \"extra\"\nRun 'azaion-loader serve --help' for usage.\n"},
		{[]string{"load", "--adr", "x", "a/b"}, "azaion-loader: load: unknown flag --adr (did you mean --addr?)\nRun 'azaion-loader load --help' for usage.\n"},
		{[]string{"load"}, "azaion-loader: load: want one FOLDER/NAME\nRun 'azaion-loader load --help' for usage.\n"},
		{[]string{"upload", "f"}, "azaion-loader: upload: want FILE and --folder\nRun 'azaion-loader upload --help' for usage.\n"},
		{[]string{"status", "--addr"}, "azaion-loader: status: flag --addr needs a value\nRun 'azaion-loader status --help' for usage.\n"},
		{[]string{"unlock", "--timeout", "soon"}, "azaion-loader: unlock: invalid value \"soon\" for flag --timeout: parse error\nRun 'azaion-loader unlock --help' for usage.\n"},
		{[]string{"seal", "--bogus"}, "azaion-loader: seal: unknown flag --bogus\nRun 'azaion-loader seal --help' for usage.\n"},
		{[]string{"demo", "--bogus"}, "azaion-loader: demo: unknown flag --bogus\nRun 'azaion-loader demo --help' for usage.\n"},
		{[]string{"version", "extra"}, "azaion-loader: version: unexpected argument \"extra\"\nRun 'azaion-loader version --help' for usage.\n"},
	} {
		code, stdout, stderr := run(c.args...)
		if code != 2 || stdout != "" || stderr != c.want {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit 2, no stdout, stderr:\n%s", c.args, code, stdout, stderr, c.want)
		}
	}
}
