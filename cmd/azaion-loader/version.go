package main

import (
	"fmt"
	"runtime/debug"
)

// versionLine names the module version and the VCS commit the binary was
// built from, as the Go toolchain records them.
func versionLine() string {
	version, commit, dirty := "(devel)", "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
	}
	return fmt.Sprintf("azaion-loader %s commit %s%s", version, commit, dirty)
}
