//go:build !linux

package unlock

import "os/exec"

// setProcAttr does nothing where the kernel cannot kill a child with its
// parent.
func setProcAttr(*exec.Cmd) {}
