package main

import "github.com/azaion/loader/cmd/internal/buildinfo"

// versionLine is the output of --version: the version (git describe at
// build time), the commit and the Go version (cmd/internal/buildinfo).
func versionLine() string {
	return buildinfo.Line("azaion-loader")
}
