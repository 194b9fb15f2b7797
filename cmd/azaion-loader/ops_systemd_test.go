package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnitsVerify runs systemd-analyze verify on every unit file in
// examples/systemd. verify insists that ExecStart's binary exists, so each
// unit is verified as a copy, in a temp dir under its own name (a .mount
// unit's name must match Where=), with /usr/bin/azaion-loader replaced
// by an executable that exists. Any warning fails the test: verify exits 0 on
// unknown keys and only says so.
func TestSystemdUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is missing (apt-get install systemd)")
	}
	units, _ := filepath.Glob("../../examples/systemd/*")
	if len(units) < 2 {
		t.Fatalf("examples/systemd holds %d unit files, want the .service and the .mount", len(units))
	}
	// Any executable does for verify: this test's own binary.
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/bin/azaion-loader", bin)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(u)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range units {
		t.Run(filepath.Base(u), func(t *testing.T) {
			cmd := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(dir, filepath.Base(u)))
			out, err := cmd.CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Fatalf("systemd-analyze verify %s: %v\n%s", filepath.Base(u), err, out)
			}
		})
	}
}

// TestServeNotifiesSystemd runs serve as systemd runs a Type=notify unit
// with WatchdogSec: it sends READY=1 once the mount is live, WATCHDOG=1
// pings, and STOPPING=1 on SIGTERM. Its secrets come from
// $CREDENTIALS_DIRECTORY (relative resource_key_file and password_file),
// and the login at start has happened by READY=1.
func testServeNotifiesSystemd(t *testing.T, bin string) {
	b := newOpsBed(t, 100_000)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	p := startServe(t, bin, b, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}, "--mount", mnt)
	want := func(msg string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, msg) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s from the loader; log:\n%s", msg, p.logText())
			}
		}
	}
	want("READY=1")
	// READY=1 came after the mount and the login: the file reads at once.
	got, err := os.ReadFile(filepath.Join(mnt, b.folder, b.name))
	if err != nil || len(got) != len(b.content) || string(got) != string(b.content) {
		t.Fatalf("read through the mount after READY=1: %d bytes, %v", len(got), err)
	}
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	testProbeNotLogged(t, p, b.listen)
	if err := p.stop(t); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM; log:\n%s", err, p.logText())
	}
	want("STOPPING=1")
	if mounted(t, mnt) {
		t.Fatal("the mount outlived the loader")
	}
}

// testProbeNotLogged: the watchdog's own GET /health probes (two have
// pinged) are not logged at INFO, while a GET /health of someone else is,
// with its duration in milliseconds to the microsecond: more than 0 for a
// request that takes well under one.
func testProbeNotLogged(t *testing.T, p *serveProc, addr string) {
	t.Helper()
	if code, _ := httpGet(t, "http://"+addr+"/health"); code != 200 {
		t.Fatalf("GET /health: %d", code)
	}
	type request struct {
		Level, Msg, Path string
		DurMS            *float64 `json:"dur_ms"`
	}
	var health []request
	deadline := time.Now().Add(10 * time.Second)
	for len(health) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		health = nil
		for _, l := range strings.Split(p.logText(), "\n") {
			var r request
			if json.Unmarshal([]byte(l), &r) == nil && r.Msg == "request" && r.Path == "/health" {
				health = append(health, r)
			}
		}
	}
	if len(health) != 1 || health[0].Level != "INFO" || health[0].DurMS == nil || *health[0].DurMS <= 0 || *health[0].DurMS >= 1000 {
		t.Fatalf("/health request lines at INFO: %+v, want only the test's own, with dur_ms in (0, 1000); log:\n%s", health, p.logText())
	}
	t.Logf("GET /health took %v ms", *health[0].DurMS)
}

// TestCredentialsDirectory: a relative *_file path is read from
// $CREDENTIALS_DIRECTORY (systemd's LoadCredential=), an absolute one as is.
func TestCredentialsDirectory(t *testing.T) {
	creds := t.TempDir()
	os.WriteFile(filepath.Join(creds, "resource-key"), []byte("key-from-credentials\n"), 0o600)
	os.WriteFile(filepath.Join(creds, "password"), []byte("pw-from-credentials\n"), 0o600)
	abs := filepath.Join(t.TempDir(), "email")
	os.WriteFile(abs, []byte("pilot@example.com\n"), 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	env := map[string]string{
		"AZAION_API_URL": "http://127.0.0.1:1", "AZAION_RESOURCE_KEY_FILE": "resource-key",
		"AZAION_PASSWORD_FILE": "password", "AZAION_EMAIL_FILE": abs,
	}
	cfg, err := loadConfig("", func(k string) string { return env[k] }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ResourceKey != "key-from-credentials" || cfg.Password != "pw-from-credentials" || cfg.Email != "pilot@example.com" {
		t.Fatalf("got key %q password %q email %q", cfg.ResourceKey, cfg.Password, cfg.Email)
	}
	// Without the variable, the relative path is relative to the working
	// directory, where there is no such file: the error names the key.
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := loadConfig("", func(k string) string { return env[k] }, nil, nil); err == nil || !strings.Contains(err.Error(), "resource_key_file") {
		t.Fatalf("without CREDENTIALS_DIRECTORY: %v", err)
	}
}
