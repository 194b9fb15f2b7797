package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// rcloneMount is an `rclone mount` of the crypt remote, as a child process.
type rcloneMount struct {
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

func obscure(bin, secret string) (string, error) {
	out, err := exec.Command(bin, "obscure", secret).Output()
	return strings.TrimSpace(string(out)), err
}

// rcloneConfig writes an rclone config with an S3 remote on the bench's
// MinIO and a crypt remote over it, passwords obscured.
func rcloneConfig(bin, dir string, st *stack) (string, error) {
	p1, err := obscure(bin, randHex(16))
	if err != nil {
		return "", fmt.Errorf("rclone obscure: %w", err)
	}
	p2, err := obscure(bin, randHex(16))
	if err != nil {
		return "", err
	}
	return rcloneConfigAt(dir, "rclone.conf", st, st.minioURL, p1, p2)
}

// rcloneConfigAt writes the config as name in dir with the S3 remote at
// endpoint and the crypt remote's obscured passwords p1 and p2.
func rcloneConfigAt(dir, name string, st *stack, endpoint, p1, p2 string) (string, error) {
	conf := fmt.Sprintf("[s3b]\ntype = s3\nprovider = Minio\naccess_key_id = %s\nsecret_access_key = %s\nendpoint = %s\nregion = %s\n\n"+
		"[cb]\ntype = crypt\nremote = s3b:rclone/bench\npassword = %s\npassword2 = %s\n",
		st.minio.AccessKey, st.minio.SecretKey, endpoint, region, p1, p2)
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

// startRclone mounts the crypt remote at dir and waits until it is mounted,
// and with probe until the resource is looked up too. The cold-first-byte
// rows do not probe: a lookup of the file before the timed open would list
// the bucket (and warm MinIO's metadata of the object) outside the timing,
// where the loader's timed open includes its lookup.
// extra are more flags for rclone mount.
func startRclone(bin, conf, dir, cacheDir, mode string, probe bool, extra ...string) (*rcloneMount, error) {
	os.MkdirAll(dir, 0o755)
	args := append([]string{"--config", conf, "mount", "cb:", dir, "--read-only",
		"--vfs-cache-mode", mode, "--cache-dir", cacheDir, "--dir-cache-time", "1h"}, extra...)
	cmd := exec.Command(bin, args...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &rcloneMount{cmd: cmd, done: make(chan struct{}), dir: dir}
	go func() { cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := mounted(dir); ok {
			if !probe {
				return m, nil
			}
			if _, err := os.Stat(filepath.Join(dir, benchName)); err == nil {
				return m, nil
			}
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("rclone mount exited: %s", errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	m.stop()
	return nil, fmt.Errorf("rclone mount not ready after 30s: %s", errb.String())
}

func mounted(dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	return bytes.Contains(b, []byte(" "+dir+" ")), nil
}

func (m *rcloneMount) stop() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
	if ok, _ := mounted(m.dir); ok {
		syscall.Unmount(m.dir, syscall.MNT_DETACH)
	}
}

// rcloneBench measures P1–P4 and P6 for rclone crypt mounts over the same
// MinIO, in both cache modes.
func rcloneBench(cfg config, st *stack, res *results, want [32]byte) error {
	dir := filepath.Join(cfg.work, "rclone")
	os.MkdirAll(dir, 0o700)
	conf, err := rcloneConfig(cfg.rclone, dir, st)
	if err != nil {
		return err
	}
	logf("rclone: uploading the plaintext to the crypt remote")
	if out, err := exec.Command(cfg.rclone, "--config", conf, "copyto", filepath.Join(cfg.work, "plain.bin"), "cb:"+benchName).CombinedOutput(); err != nil {
		return fmt.Errorf("rclone copyto: %w: %s", err, out)
	}
	mnt, cache := filepath.Join(dir, "mnt"), filepath.Join(dir, "cache")
	path := filepath.Join(mnt, benchName)
	mid := cfg.size / 2 &^ 4095
	for _, mode := range []string{"off", "full"} {
		k := "rclone." + mode + "."
		for i := range cfg.runs {
			os.RemoveAll(cache)
			dropCaches()
			m, err := startRclone(cfg.rclone, conf, mnt, cache, mode, true)
			if err != nil {
				return err
			}
			pid := m.cmd.Process.Pid
			resetPeak(pid)
			d, err := ddRead(path)
			if err != nil {
				m.stop()
				return err
			}
			res.add(k+"p3", rate(cfg.size, d))
			if mode == "full" { // let the cache settle before the warm read
				time.Sleep(2 * time.Second)
			}
			dropCaches()
			d, err = ddRead(path)
			if err != nil {
				m.stop()
				return err
			}
			res.add(k+"p1", rate(cfg.size, d))
			d, err = ddRead(path)
			if err != nil {
				m.stop()
				return err
			}
			res.add(k+"p4", rate(cfg.size, d))
			res.add(k+"rss", float64(peakRSS(pid)))
			if i == 0 {
				if got, err := hashFile(path); err != nil || got != want {
					m.stop()
					return fmt.Errorf("rclone mount (%s) gives other bytes (%v)", mode, err)
				}
			}
			m.stop()
			for _, c := range []struct {
				key string
				off int64
			}{{"p2.start", 0}, {"p2.mid", mid}} {
				os.RemoveAll(cache)
				dropCaches()
				m, err := startRclone(cfg.rclone, conf, mnt, cache, mode, false)
				if err != nil {
					return err
				}
				d, err := firstByte(path, c.off)
				m.stop()
				if err != nil {
					return err
				}
				res.add(k+c.key, d.Seconds())
			}
			logf("rclone %s %d: P1 %.2f GB/s P3 %.2f GB/s P4 %.2f GB/s P2 %.1f/%.1f ms RSS %.0f MiB", mode, i,
				res.figs[k+"p1"][i]/1e9, res.figs[k+"p3"][i]/1e9, res.figs[k+"p4"][i]/1e9,
				res.figs[k+"p2.start"][i]*1e3, res.figs[k+"p2.mid"][i]*1e3, res.figs[k+"rss"][i]/(1<<20))
		}
	}
	return nil
}
