package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/azaion/loader/resources"
)

// sealFiles writes a fragment file and a tar-like input in a fresh dir.
func sealFiles(t *testing.T) (dir, fragPath, inPath string, fragment, plain []byte) {
	t.Helper()
	dir = t.TempDir()
	fragment = []byte("fragment-bytes\x00\xff-no-newline-trimmed\n")
	plain = make([]byte, 300<<10+3)
	rand.Read(plain)
	fragPath, inPath = filepath.Join(dir, "fragment.bin"), filepath.Join(dir, "images.tar")
	if err := os.WriteFile(fragPath, fragment, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	return
}

func openArchive(t *testing.T, archive, fragment []byte) []byte {
	t.Helper()
	// PROTOCOL §5: the key is SHA-256 of the fragment's exact bytes.
	plain, err := resources.DecryptKey(resources.AESKey(string(fragment)), archive)
	if err != nil {
		t.Fatalf("archive does not decrypt: %v", err)
	}
	return plain
}

func TestSealFileToFile(t *testing.T) {
	dir, fragPath, inPath, fragment, plain := sealFiles(t)
	out := filepath.Join(dir, "images.enc")
	var stdout, stderr bytes.Buffer
	if err := runSeal([]string{"--fragment", fragPath, "-o", out, inPath}, strings.NewReader("unused"), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want both empty (stderr is no terminal)", stdout.String(), stderr.String())
	}
	archive, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(archive)) != resources.CipherLen(int64(len(plain))) {
		t.Errorf("archive of %d bytes, want %d", len(archive), resources.CipherLen(int64(len(plain))))
	}
	if !bytes.Equal(openArchive(t, archive, fragment), plain) {
		t.Error("archive does not hold the tar")
	}
	if got, want := listNames(t, dir), []string{"fragment.bin", "images.enc", "images.tar"}; !slices.Equal(got, want) {
		t.Errorf("dir holds %v, want %v", got, want)
	}
}

func TestSealStdinToStdout(t *testing.T) {
	_, fragPath, _, fragment, plain := sealFiles(t)
	for _, args := range [][]string{{"--fragment", fragPath}, {"--fragment", fragPath, "-"}} {
		var stdout, stderr bytes.Buffer
		if err := runSeal(args, bytes.NewReader(plain), &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !bytes.Equal(openArchive(t, stdout.Bytes(), fragment), plain) || stderr.Len() != 0 {
			t.Errorf("%v: wrong archive on stdout, or stderr %q", args, stderr.String())
		}
	}
}

func TestSealHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := runSeal([]string{"--help"}, nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
		t.Errorf("--help = %v, want flag.ErrHelp (exit 0)", err)
	}
	for _, want := range []string{"Usage: azaion-loader seal --fragment FILE [-o OUT] [TAR|-]", "Example:", "-fragment", "docker save"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestSealErrors(t *testing.T) {
	dir, fragPath, inPath, _, _ := sealFiles(t)
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "images.enc")
	if err := os.WriteFile(out, []byte("the previous archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listNames(t, dir)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{inPath}, 2, "seal: --fragment is required"},
		{[]string{"--fragment", fragPath, inPath, "extra"}, 2, `seal: unexpected argument "extra"`},
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"--fragment", filepath.Join(dir, "nope"), "-o", out, inPath}, 1, "seal: read the key fragment: open "},
		{[]string{"--fragment", empty, "-o", out, inPath}, 1, "seal: the key fragment file " + empty + " is empty"},
		{[]string{"--fragment", fragPath, "-o", out, filepath.Join(dir, "missing.tar")}, 1, "seal: open " + filepath.Join(dir, "missing.tar")},
		{[]string{"--fragment", fragPath, "-o", out, dir}, 1, "seal: read "}, // a directory as the tar
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		err := runSeal(tc.args, nil, &stdout, &stderr)
		if err == nil || exitCode(err) != tc.code || !strings.HasPrefix(err.Error(), tc.msg) {
			t.Errorf("%v: error %v (exit %d), want exit %d and %q", tc.args, err, exitCode(err), tc.code, tc.msg)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote %d bytes to stdout", tc.args, stdout.Len())
		}
	}
	if got := listNames(t, dir); !slices.Equal(got, before) {
		t.Errorf("dir holds %v after failures, want %v", got, before)
	}
	if prev, _ := os.ReadFile(out); string(prev) != "the previous archive" {
		t.Errorf("a failed seal changed OUT to %d bytes", len(prev))
	}
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// /dev/null is a character device but no terminal: sealing into it works.
func TestSealToDevNull(t *testing.T) {
	_, fragPath, inPath, _, _ := sealFiles(t)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if err := runSeal([]string{"--fragment", fragPath, inPath}, nil, null, null); err != nil {
		t.Errorf("seal to /dev/null: %v", err)
	}
}
