package unlock

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill docker load when the loader dies, so that
// docker never sees a clean end of its stdin and commits a partial load.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
