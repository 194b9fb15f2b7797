package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestGetPrefersLinkerValues(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v1.2.0-3-gabcdef0", "abcdef0123456789"
	in := Get()
	if in != (Info{"v1.2.0-3-gabcdef0", "abcdef0123456789", runtime.Version()}) {
		t.Fatalf("Get() = %+v", in)
	}
	want := "azaion-loader v1.2.0-3-gabcdef0 (commit abcdef0123456789, " + runtime.Version() + ")"
	if got := Line("azaion-loader"); got != want {
		t.Fatalf("Line = %q, want %q", got, want)
	}
}

func TestGetFallsBackToBuildInfo(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "", ""
	in := Get()
	// A test binary's main module has no version ("(devel)" or empty)
	// and no VCS stamp, so the fallback must still fill every field.
	if in.Version == "" || in.Commit == "" || !strings.HasPrefix(in.GoVersion, "go") {
		t.Fatalf("Get() = %+v: an empty field", in)
	}
}
