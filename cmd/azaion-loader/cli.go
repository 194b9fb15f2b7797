package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
)

// The command line is parsed with the standard flag package and a small
// dispatcher (main.go); the README's "CLI" note says why no CLI library.
// This file holds what a library would give: help on stdout with flags
// shown as typed (--flag), one line and a hint for a usage error,
// "did you mean" and --version on every command.

// usageError is a command line that does not parse: exit code 2. main
// prints it as one line, then hint when there is one.
type usageError struct {
	error
	hint string
}

// helpHint is the hint under a usage error of cmd ("" for the top level).
func helpHint(cmd string) string {
	if cmd == "" {
		return "Run 'azaion-loader --help' for usage."
	}
	return fmt.Sprintf("Run 'azaion-loader %s --help' for usage.", cmd)
}

// withHint gives a usage error of cmd the hint to cmd's help, unless it
// has one.
func withHint(err error, cmd string) error {
	var ue usageError
	if errors.As(err, &ue) && ue.hint == "" {
		ue.hint = helpHint(cmd)
		return ue
	}
	return err
}

// parseFlags parses a command's flags. --help (or -h) prints usage and
// the flags to stdout and --version the version; both return
// flag.ErrHelp, which ends the command with exit 0. A bad flag is a
// usageError that names it.
func parseFlags(fset *flag.FlagSet, usage string, stdout io.Writer, args []string) error {
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	version := fset.Bool("version", false, "print the version and exit")
	err := fset.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, usage, fset)
		return err
	case err != nil:
		return usageError{error: fmt.Errorf("%s: %s", fset.Name(), flagError(err, fset))}
	case *version:
		fmt.Fprintln(stdout, versionLine())
		return flag.ErrHelp
	}
	return nil
}

// printHelp writes usage (which ends in "Flags:") and the flags of fset,
// one a line: "--name ARG  what it does (default X)".
func printHelp(w io.Writer, usage string, fset *flag.FlagSet) {
	fmt.Fprint(w, usage)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fset.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		name := dashed(f.Name)
		if arg != "" {
			name += " " + arg
		}
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, text)
	})
	fmt.Fprintf(tw, "  -h, --help\tprint this help\n")
	tw.Flush()
}

// dashed is a flag's name as it is typed: -o, --folder.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagName is a flag name in the flag package's errors, which show it
// with one dash.
var flagName = regexp.MustCompile(`(^|\s)-([A-Za-z][A-Za-z0-9-]+)`)

// flagError rewrites the flag package's error to name flags as typed, and
// suggests a flag for a near miss.
func flagError(err error, fset *flag.FlagSet) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		fset.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg = "unknown flag " + dashed(name)
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", dashed(s))
		}
		return msg
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Sprintf("flag %s needs a value", dashed(name))
	}
	return flagName.ReplaceAllString(msg, "$1--$2")
}

// suggest returns the candidate nearest to s by edit distance, if it is
// at most 2 edits away and s is not mostly made of edits; else "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD && d < len(c)/2+1 {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
