package resources

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Hardware computes the device's hardware line of PROTOCOL §1 from /proc and
// /sys:
//
//	CPU: <model>. GPU: <names, comma-separated, or none>. Memory: <total MiB>. DriveSerial: <serial or unknown>.
//
// Every part comes from something that does not change between runs of the
// same device. Configuration may replace the line (containers, tests).
func Hardware() string {
	return fmt.Sprintf("CPU: %s. GPU: %s. Memory: %d. DriveSerial: %s.", cpuModel(), gpus(), memMiB(), driveSerial())
}

func cpuModel() string {
	for _, key := range []string{"model name", "Model", "Hardware", "cpu model"} {
		if v := procField("/proc/cpuinfo", key); v != "" {
			return v
		}
	}
	return "unknown"
}

func memMiB() int64 {
	v := strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")
	kb, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return kb / 1024
}

// gpus names the NVIDIA GPUs the driver reports (Jetson and desktop cards),
// sorted so that the line is stable.
func gpus() string {
	var names []string
	infos, _ := filepath.Glob("/proc/driver/nvidia/gpus/*/information")
	for _, f := range infos {
		if v := procField(f, "Model"); v != "" {
			names = append(names, v)
		}
	}
	if len(names) == 0 {
		if b, err := os.ReadFile("/proc/device-tree/model"); err == nil && strings.Contains(string(b), "Jetson") {
			names = append(names, "NVIDIA Tegra")
		}
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// driveSerial is the serial of the first whole disk (sorted by name) that
// reports one.
func driveSerial() string {
	disks, _ := filepath.Glob("/sys/block/*")
	sort.Strings(disks)
	for _, d := range disks {
		base := filepath.Base(d)
		if strings.HasPrefix(base, "loop") || strings.HasPrefix(base, "ram") || strings.HasPrefix(base, "zram") || strings.HasPrefix(base, "dm-") {
			continue
		}
		for _, f := range []string{"device/serial", "serial"} {
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil {
				if s := strings.TrimSpace(string(b)); s != "" {
					return s
				}
			}
		}
	}
	return "unknown"
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
