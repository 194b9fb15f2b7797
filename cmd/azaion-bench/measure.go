package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// dropCaches empties the kernel's page cache (P1's "cache state").
func dropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

// ddRead reads path with `dd bs=1M` to /dev/null and returns the wall time.
func ddRead(path string) (time.Duration, error) {
	d, _, err := ddReadCPU(path)
	return d, err
}

// ddReadCPU is ddRead that also returns dd's own CPU time (user and
// system): its copies out of the page cache, and the kernel's side of the
// FUSE requests it waits for.
func ddReadCPU(path string) (wall, cpu time.Duration, err error) {
	start := time.Now()
	cmd := exec.Command("dd", "if="+path, "of=/dev/null", "bs=1M")
	out, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("dd %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// timed runs a command and returns its wall time.
func timed(name string, args ...string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.Command(name, args...).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return d, nil
}

// resetPeak resets a process's peak RSS (VmHWM), so that the next peakRSS
// covers only what runs in between.
func resetPeak(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// peakRSS is a process's VmHWM in bytes.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// firstByte times open + one 4 KiB read at off.
func firstByte(path string, off int64) (time.Duration, error) {
	buf := make([]byte, 4096)
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, off); err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", path, off, err)
	}
	return time.Since(start), nil
}

// randomReads makes n 4 KiB reads at random 4 KiB-aligned offsets (the same
// sequence for every file of the same size) and returns IOPS and the p99
// latency.
func randomReads(path string, size int64, n int) (iops float64, p99 time.Duration, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range lat {
		off := rng.Int64N(size/4096) * 4096
		t := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			return 0, 0, err
		}
		lat[i] = time.Since(t)
	}
	total := time.Since(start)
	slices.Sort(lat)
	return float64(n) / total.Seconds(), lat[n*99/100], nil
}

// samples are the figures of one quantity over several runs.
type samples []float64

func (s samples) median() float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func (s samples) spread() (lo, hi float64) {
	if len(s) == 0 {
		return 0, 0
	}
	return slices.Min(s), slices.Max(s)
}

// rate turns a duration into bytes per second.
func rate(size int64, d time.Duration) float64 { return float64(size) / d.Seconds() }

// perGB is CPU time d per GB of a size-byte read, in seconds.
func perGB(d time.Duration, size int64) float64 { return d.Seconds() / (float64(size) / 1e9) }

// cpuTime is the CPU time (user and system, every thread) a process has
// used so far, from /proc/PID/stat, in clock ticks of 10 ms.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold any byte: cut at the last ')'.
	end := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[end+1:]))
	if end < 0 || len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
