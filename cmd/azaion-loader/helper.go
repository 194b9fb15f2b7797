package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const helperUsage = `Usage: azaion-loader CONFIG MOUNTPOINT [-o OPTIONS]

The FUSE mount helper form, which mount(8) runs for filesystem type
fuse.azaion-loader (through mount.fuse3, which finds azaion-loader on PATH;
mount(8) gives its helpers the default PATH, so install it in /usr/bin,
/usr/sbin, /usr/local/bin or /usr/local/sbin). It starts the loader in the
background as "serve --config CONFIG --mount MOUNTPOINT", waits until the
mount is live and returns, printing nothing. A failure before that is one
line on stderr and a non-zero exit. The daemon logs to log=FILE, else to
the journal, else nowhere; it ends when the mount is unmounted. The
mount's source in /proc/mounts is CONFIG.

OPTIONS (comma-separated):
  ro              the mount is always read-only
  allow_other     let other users read the mount (needs user_allow_other in
                  /etc/fuse.conf when not root)
  log=FILE        the daemon's log once it runs (default: the journal)
  rw              accepted (mount(8) adds it when OPTIONS lack ro); the mount
                  is read-only all the same: writes fail with EROFS
  dev, suid, noatime and the other generic mount options, x-*, _netdev,
  nofail, auto, noauto, defaults: accepted and ignored

Example:
  mount -t fuse.azaion-loader /etc/azaion/loader.yaml /mnt/azaion -o ro,allow_other
  # /etc/fstab:
  /etc/azaion/loader.yaml /mnt/azaion fuse.azaion-loader ro,allow_other,_netdev,nofail 0 0
`

// helperReadyTimeout bounds how long the helper waits for the daemon's
// mount: a login at start may take two API timeouts.
const helperReadyTimeout = 3 * time.Minute

// helperArgs is what the helper form's command line asks for.
type helperArgs struct {
	config, mount string
	allowOther    bool
	logFile       string
}

// isHelperForm reports whether args is the mount helper's form as
// mount.fuse3 runs it: CONFIG MOUNTPOINT [-o OPTIONS], CONFIG being no
// command. CONFIG is a path as the user typed it, which may name no file
// (the helper then says so); mount(8) passes MOUNTPOINT as an absolute
// path. A near miss of a command that names no file is a mistyped command.
func isHelperForm(args []string) bool {
	if len(args) < 2 || isCommand(args[0]) || strings.HasPrefix(args[0], "-") || strings.HasPrefix(args[1], "-") {
		return false
	}
	if _, err := os.Stat(args[0]); err == nil || strings.Contains(args[0], "/") {
		return true
	}
	return filepath.IsAbs(args[1]) && suggest(args[0], commands) == ""
}

func parseHelper(args []string) (helperArgs, error) {
	var h helperArgs
	var opts []string
	var pos []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o":
			if i+1 == len(args) {
				return h, usageError{error: errors.New("-o needs OPTIONS")}
			}
			i++
			opts = append(opts, strings.Split(args[i], ",")...)
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, strings.Split(a[2:], ",")...)
		case a == "-f", a == "-n", a == "-s", a == "-v": // fake, no mtab, sloppy, verbose: nothing to do
		case strings.HasPrefix(a, "-"):
			return h, usageError{error: fmt.Errorf("unknown flag %s (the mount helper takes -o OPTIONS)", a)}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return h, usageError{error: fmt.Errorf("the mount helper wants CONFIG MOUNTPOINT, got %d arguments", len(pos))}
	}
	var err error
	if h.config, err = filepath.Abs(pos[0]); err != nil {
		return h, err
	}
	if h.mount, err = filepath.Abs(pos[1]); err != nil {
		return h, err
	}
	for _, o := range opts {
		key, val, _ := strings.Cut(o, "=")
		switch {
		case key == "allow_other":
			h.allowOther = true
		case key == "log":
			if val == "" {
				return h, usageError{error: errors.New("mount option log needs a file: log=FILE")}
			}
			if h.logFile, err = filepath.Abs(val); err != nil {
				return h, err
			}
		case ignoredOption(key):
		default:
			return h, usageError{error: fmt.Errorf("unknown mount option %q (see 'azaion-loader help mount')", o)}
		}
	}
	return h, nil
}

// ignoredOption is a generic mount option that means nothing here, or one
// that mount(8), systemd or fuse pass along.
func ignoredOption(key string) bool {
	switch key {
	case "", "ro", "rw", "defaults", "dev", "nodev", "suid", "nosuid", "exec", "noexec",
		"atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime",
		"diratime", "nodiratime", "lazytime", "nolazytime", "sync", "async", "dirsync",
		"auto", "noauto", "user", "nouser", "users", "owner", "group", "nofail", "_netdev",
		"default_permissions", "comment":
		return true
	}
	return strings.HasPrefix(key, "x-")
}

// runHelper is the mount helper form: it re-executes the loader as a
// daemon in a session of its own and returns once the daemon reports its
// mount live on the ready pipe (notifyReady), silent on success. The
// daemon logs to its log destination from its start (serve.go); its
// stderr, which comes here until it is ready, carries only the one line
// of a failure, passed on to mount's caller.
func runHelper(args []string, stderr io.Writer) error {
	h, err := parseHelper(args)
	if err != nil {
		return err
	}
	if _, err := os.Stat(h.config); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("config file %s: %w", h.config, err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("mount helper: %w", err)
	}
	childArgs := []string{"serve", "--config", h.config, "--mount", h.mount}
	if h.allowOther {
		childArgs = append(childArgs, "--allow-other")
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("mount helper: %w", err)
	}
	defer readyR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return fmt.Errorf("mount helper: %w", err)
	}
	defer errR.Close()
	cmd := exec.Command(self, childArgs...)
	cmd.Dir = "/"
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	if h.logFile != "" {
		cmd.Env = append(cmd.Env, helperLogEnv+"="+h.logFile)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	errW.Close()
	if err != nil {
		return fmt.Errorf("mount helper: start the daemon: %w", err)
	}
	// The daemon's stderr is copied here until it is ready or gone.
	copied := make(chan int, 1)
	go func() {
		lines := 0
		sc := bufio.NewScanner(errR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(stderr, sc.Text())
			lines++
		}
		copied <- lines
	}()
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		ready <- line == "ready\n"
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// stopped is the daemon's end before its mount was live: its own line
	// said why, unless it wrote none (a signal).
	stopped := func(err error) error {
		var ee *exec.ExitError
		if <-copied > 0 && errors.As(err, &ee) && ee.ExitCode() > 0 {
			return reportedError{ee.ExitCode()}
		}
		return fmt.Errorf("mount helper: the loader stopped before its mount was live: %v", err)
	}
	select {
	case ok := <-ready:
		if ok {
			return nil // the daemon goes on; its stderr now goes to its log
		}
		// The pipe closed without "ready": the daemon is exiting.
		return stopped(<-exited)
	case err := <-exited:
		return stopped(err)
	case <-time.After(helperReadyTimeout):
		cmd.Process.Kill()
		return fmt.Errorf("mount helper: the loader's mount was not live after %s; stopped it", helperReadyTimeout)
	}
}
