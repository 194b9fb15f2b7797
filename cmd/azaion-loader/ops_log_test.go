package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azaion/loader/resources/testbed"
)

// TestJournalPriorities runs serve as systemd does with StandardError=
// journal: JOURNAL_STREAM names the device and inode of its stderr (here a
// pipe the test reads). Every line then starts with journald's priority
// (<3> error, <4> warning, <6> info, <7> debug) matching the line's level,
// so that journalctl -p err finds the errors. A login refused at start
// logs an error, a NOTIFY_SOCKET nobody listens on a warning, and the
// watchdog's own /health probe a debug line. With JOURNAL_STREAM naming
// another stream, lines carry no prefix.
func TestJournalPriorities(t *testing.T) {
	bin := buildLoader(t)
	bed := testbed.New(t, testbed.Options{})
	dir := t.TempDir()
	env := cleanEnv(
		"AZAION_API_URL="+bed.APIURL, "AZAION_RESOURCE_KEY="+bed.ResourceKey, "AZAION_HARDWARE="+bed.Hardware,
		"AZAION_CACHE_DIR="+filepath.Join(dir, "cache"), "AZAION_LISTEN=127.0.0.1:0", "AZAION_LOG_LEVEL=debug",
		"AZAION_EMAIL="+bed.Email, "AZAION_PASSWORD=not-"+bed.Password,
		"NOTIFY_SOCKET="+filepath.Join(dir, "nobody-listens"), "WATCHDOG_USEC=100000",
	)
	priority := map[string]string{"ERROR": "<3>", "WARN": "<4>", "INFO": "<6>", "DEBUG": "<7>"}
	line := regexp.MustCompile(`^(<[0-9]>)?(\{.*\})$`)

	// serve runs the loader with stderr a pipe until it has logged an
	// error, a warning and the debug line of a watchdog probe, and returns
	// its lines.
	serve := func(journalStream func(r *os.File) string) []string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(env, "JOURNAL_STREAM="+journalStream(r))
		cmd.Stderr = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		lines := make(chan string, 1000)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		var got []string
		seen := map[string]bool{}
		deadline := time.After(30 * time.Second)
		for !seen["ERROR"] || !seen["WARN"] || !seen["probe"] {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("serve ended early:\n%s", strings.Join(got, "\n"))
				}
				got = append(got, l)
				var v struct{ Level, Msg, Path string }
				if m := line.FindStringSubmatch(l); m != nil && json.Unmarshal([]byte(m[2]), &v) == nil {
					seen[v.Level] = true
					if v.Msg == "request" && v.Path == "/health" && v.Level == "DEBUG" {
						seen["probe"] = true
					}
				}
			case <-deadline:
				t.Fatalf("no error, warning and debug line of the watchdog's probe within 30s:\n%s", strings.Join(got, "\n"))
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		return got
	}

	got := serve(func(r *os.File) string {
		// The pipe's write end, the loader's stderr, has the read end's inode.
		var st syscall.Stat_t
		if err := syscall.Fstat(int(r.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	})
	for _, l := range got {
		m := line.FindStringSubmatch(l)
		var v struct{ Level string }
		if m == nil || json.Unmarshal([]byte(m[2]), &v) != nil || m[1] != priority[v.Level] {
			t.Errorf("line without the priority of its level (%s):\n%s", priority[v.Level], l)
		}
	}

	got = serve(func(*os.File) string { return "1:1" })
	for _, l := range got {
		if !strings.HasPrefix(l, "{") {
			t.Errorf("a line with JOURNAL_STREAM naming another stream has a prefix:\n%s", l)
		}
	}
}
