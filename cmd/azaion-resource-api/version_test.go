package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestVersionFlag builds the binary with the version set as make build
// sets it and checks what --version prints.
func TestVersionFlag(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "azaion-resource-api")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pkg := "github.com/azaion/loader/cmd/internal/buildinfo"
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"-ldflags", "-X "+pkg+".version=v1.2.3 -X "+pkg+".commit=0123abc", ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	want := "azaion-resource-api v1.2.3 (commit 0123abc, " + runtime.Version() + ")\n"
	if err != nil || string(out) != want {
		t.Fatalf("--version: %q, %v; want %q", out, err, want)
	}
}
