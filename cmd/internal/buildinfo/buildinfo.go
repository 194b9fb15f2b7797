// Package buildinfo names the version, commit and Go version a binary was
// built from. `make build` and `make package` set version and commit with
// -ldflags -X (git describe --tags --always --dirty and the full commit);
// a plain `go build` or `go install` falls back to what the Go toolchain
// records in the binary (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker:
//
//	-X github.com/azaion/loader/cmd/internal/buildinfo.version=v1.2.0-3-gabcdef0
//	-X github.com/azaion/loader/cmd/internal/buildinfo.commit=abcdef0123...
var version, commit string

// Info is what a binary reports about its build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
}

// Get returns the linker's values, else the toolchain's build info; what
// neither knows is "unknown".
func Get() Info {
	in := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if in.Version != "" && in.Commit != "" {
		return in
	}
	var vcsRev string
	var dirty bool
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" && bi.Main.Version != "" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if in.Commit == "" {
		in.Commit = vcsRev
		if vcsRev != "" && dirty {
			in.Commit += "-dirty"
		}
	}
	if in.Version == "" {
		in.Version = "unknown"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	return in
}

// Line is the --version output of the binary named name:
// "azaion-loader v1.2.0-3-gabcdef0 (commit abcdef0…, go1.26.8)".
func Line(name string) string {
	in := Get()
	return fmt.Sprintf("%s %s (commit %s, %s)", name, in.Version, in.Commit, in.GoVersion)
}
