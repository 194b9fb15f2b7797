package boottest

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackages opens each .deb of make package as dpkg-deb does: it
// holds what an install needs, and its /usr/bin/azaion-loader is an ELF
// of its own architecture (an arm64 .deb with an amd64 binary would
// install and then fail to start on the device).
func TestPackages(t *testing.T) {
	deb := os.Getenv("AZAION_BOOT_DEB")
	if deb == "" {
		t.Fatal("AZAION_BOOT_DEB (the amd64 .deb, next to the arm64 one) must be set: run .ci/boot-test")
	}
	want := []string{
		"./usr/bin/azaion-loader", "./usr/lib/systemd/system/azaion-loader.service",
		"./usr/lib/systemd/system/mnt-azaion.mount", "./etc/azaion/loader.yaml",
		"./etc/azaion/credentials/", "./var/cache/azaion-loader/", "./mnt/azaion/",
	}
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		t.Run(arch, func(t *testing.T) {
			debs, _ := filepath.Glob(filepath.Join(filepath.Dir(deb), "azaion-loader_*_"+arch+".deb"))
			if len(debs) != 1 {
				t.Fatalf("%d azaion-loader_*_%s.deb next to %s, want 1", len(debs), arch, deb)
			}
			info, err := exec.Command("dpkg-deb", "--field", debs[0], "Architecture", "Depends").Output()
			if err != nil || !strings.Contains(string(info), "Architecture: "+arch) || !strings.Contains(string(info), "fuse3") {
				t.Errorf("dpkg-deb --field: %v\n%s", err, info)
			}
			listing, err := exec.Command("dpkg-deb", "-c", debs[0]).Output()
			if err != nil {
				t.Fatalf("dpkg-deb -c: %v", err)
			}
			for _, w := range want {
				if !bytes.Contains(listing, []byte(" "+w+"\n")) {
					t.Errorf("dpkg-deb -c lists no %s:\n%s", w, listing)
				}
			}
			fsys, err := exec.Command("dpkg-deb", "--fsys-tarfile", debs[0]).Output()
			if err != nil {
				t.Fatalf("dpkg-deb --fsys-tarfile: %v", err)
			}
			tr := tar.NewReader(bytes.NewReader(fsys))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					t.Fatal("no ./usr/bin/azaion-loader in the package")
				} else if err != nil {
					t.Fatal(err)
				}
				if h.Name != "./usr/bin/azaion-loader" {
					continue
				}
				bin, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				f, err := elf.NewFile(bytes.NewReader(bin))
				if err != nil {
					t.Fatalf("azaion-loader: not an ELF: %v", err)
				}
				if f.Class != elf.ELFCLASS64 || f.Machine != machine || f.Type != elf.ET_EXEC {
					t.Errorf("azaion-loader: %v %v %v, want ELFCLASS64 %v ET_EXEC", f.Class, f.Machine, f.Type, machine)
				}
				if h.Mode&0o111 == 0 {
					t.Errorf("azaion-loader: mode %o, not executable", h.Mode)
				}
				return
			}
		})
	}
}
