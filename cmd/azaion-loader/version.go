package main

import (
	"github.com/azaion/loader/cmd/internal/buildinfo"
	"github.com/azaion/loader/control"
)

// versionLine is the output of --version: the version (git describe at
// build time), the commit and the Go version (cmd/internal/buildinfo).
func versionLine() string {
	return buildinfo.Line("azaion-loader")
}

// buildInfo is the version and commit for azaion_loader_build_info.
func buildInfo() control.BuildInfo {
	bi := buildinfo.Get()
	return control.BuildInfo{Version: bi.Version, Commit: bi.Commit}
}
