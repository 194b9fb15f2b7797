package main

import (
	"fmt"
	"runtime/debug"

	"github.com/azaion/loader/control"
)

// versionLine names the module version and the VCS commit the binary was
// built from, as the Go toolchain records them.
func versionLine() string {
	version, commit, dirty := buildVersion()
	return fmt.Sprintf("azaion-loader %s commit %s%s", version, commit, dirty)
}

// buildInfo is the version and commit for azaion_loader_build_info.
func buildInfo() control.BuildInfo {
	version, commit, dirty := buildVersion()
	return control.BuildInfo{Version: version, Commit: commit + dirty}
}

// buildVersion is the module version, the VCS commit and "-dirty" for a
// modified tree, as the Go toolchain records them.
func buildVersion() (version, commit, dirty string) {
	version, commit = "(devel)", "unknown"
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
	return version, commit, dirty
}
