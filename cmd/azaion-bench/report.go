package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
)

// machine is the machine line: CPU model, cores, kernel, memory.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			var kb int64
			fmt.Sscan(f[1], &kb)
			mem = fmt.Sprintf(", %d GiB RAM", kb>>20)
		}
	}
	return fmt.Sprintf("%s, %d cores, Linux %s%s, %s", cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), mem, runtime.Version())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Units of the figures.
func gbs(v float64) string      { return fmt.Sprintf("%.2f GB/s", v/1e9) }
func ms(v float64) string       { return fmt.Sprintf("%.1f ms", v*1e3) }
func mib(v float64) string      { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }
func iops(v float64) string     { return fmt.Sprintf("%.0f IOPS", v) }
func cpuPerGB(v float64) string { return fmt.Sprintf("%.2f CPU-s/GB", v) }

// fig is "median [min–max]" of a figure.
func (r *results) fig(key string, unit func(float64) string) string {
	s, ok := r.figs[key]
	if !ok {
		return "—"
	}
	lo, hi := s.spread()
	return fmt.Sprintf("%s [%s–%s]", unit(s.median()), strings.Fields(unit(lo))[0], strings.Fields(unit(hi))[0])
}

func (r *results) med(key string) float64 { return r.figs[key].median() }

func (r *results) max(key string) float64 { _, hi := r.figs[key].spread(); return hi }
func (r *results) min(key string) float64 { lo, _ := r.figs[key].spread(); return lo }

func (r *results) has(key string) bool { return len(r.figs[key]) > 0 }

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// markdown renders BENCHMARKS.md's run section.
func (r *results) markdown(cfg config, loadBefore, loadAfter string) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f+"\n", a...) }
	w("Machine: %s.  ", machine())
	w("Load average (1, 5, 15 min) before the run: %s; after: %s.  ", loadBefore, loadAfter)
	w("Resource: %d bytes (%.0f MiB) of random bytes; %d runs of each figure, shown as median [min–max].  ", cfg.size, float64(cfg.size)/(1<<20), cfg.runs)
	w("Command: `%s`", cfg.command)
	w("")
	w("| # | what | loader | baseline (same run) | ratio | target | |")
	w("| --- | --- | --- | --- | --- | --- | --- |")
	p1 := r.med("p1") / r.med("fuse")
	w("| P1 | warm sequential read, `dd bs=1M`, page cache dropped | %s | (a) FUSE ceiling, zeros from memory: %s | %.2f× (a) | ≥ 0.7× (a) | %s |",
		r.fig("p1", gbs), r.fig("fuse", gbs), p1, verdict(p1 >= 0.7))
	w("| P1 | | | (b) `openssl enc -d` over the same ciphertext file, page cache dropped: %s | %.2f× (b) | report | |",
		r.fig("openssl", gbs), r.med("p1")/r.med("openssl"))
	w("| P1 | | | (c) the disk: `dd bs=1M` of the cached ciphertext file itself, page cache dropped: %s | %.2f× (c) | report | |",
		r.fig("disk", gbs), r.med("p1")/r.med("disk"))
	for _, c := range []struct{ key, what string }{{"p2.start", "offset 0"}, {"p2.mid", "the middle"}} {
		x := r.med("p2.seed") / r.med(c.key)
		w("| P2 | cold first byte: open + 4 KiB at %s, no local cache | %s | download, decrypt, then read: %s | %.0f× faster | ≤ 10 ms and ≥ 50× | %s |",
			c.what, r.fig(c.key, ms), r.fig("p2.seed", ms), x, verdict(r.med(c.key) <= 0.010 && x >= 50))
	}
	p3 := r.med("p3") / r.med("p3.download")
	w("| P3 | cold sequential read, `dd bs=1M`, no local cache | %s | plain GET of the big part to nowhere, same S3 SDK: %s | %.2f× | ≥ 0.6× | %s |",
		r.fig("p3", gbs), r.fig("p3.download", gbs), p3, verdict(p3 >= 0.6))
	w("| P4 | second open and full read, page cache kept | %s | P1: %s; the zero file system read again: %s | %.1f× P1 | ≥ 3 GB/s | %s |",
		r.fig("p4", gbs), r.fig("p1", gbs), r.fig("fuse.warm", gbs), r.med("p4")/r.med("p1"), verdict(r.med("p4") >= 3e9))
	w("| P5 | random 4 KiB reads, warm cache, page cache dropped, one thread | %s, p99 %s | plaintext in a local file: %s, p99 %s | %.2f× IOPS | report | |",
		r.fig("p5.iops", iops), r.fig("p5.p99", ms), r.fig("p5.local.iops", iops), r.fig("p5.local.p99", ms), r.med("p5.iops")/r.med("p5.local.iops"))
	for _, c := range []struct{ key, what string }{{"rss.p1", "P1"}, {"rss.p3", "P3"}, {"rss.load", "`/load`"}, {"rss.upload", "`/upload`"}} {
		w("| P6 | peak RSS of the loader during %s | %s | the file: %s | %.3f× | ≤ 100 MiB (judged on the max) | %s |",
			c.what, r.fig(c.key, mib), mib(float64(r.size)), r.max(c.key)/float64(r.size), verdict(r.max(c.key) <= 100<<20))
	}
	l, u := r.med("load")/r.med("go.decrypt"), r.med("upload")/r.med("go.encrypt")
	w("| P7 | `/load` throughput | %s | Go CBC decrypt, one core: %s | %.3f× | report, ≥ 0.7× | %s |", r.fig("load", gbs), r.fig("go.decrypt", gbs), l, verdict(l >= 0.7))
	w("| P7 | `/upload` throughput | %s | Go CBC encrypt, one core: %s | %.3f× | report, ≥ 0.7× | %s |", r.fig("upload", gbs), r.fig("go.encrypt", gbs), u, verdict(u >= 0.7))
	w("| P7 | the loader's CBC decrypt alone (`resources/aescbc`), one core | %s | Go CBC decrypt, one core: %s | %.2f× | report | |",
		r.fig("aescbc.decrypt", gbs), r.fig("go.decrypt", gbs), r.med("aescbc.decrypt")/r.med("go.decrypt"))
	if r.has("cpu.p1") && r.has("cpu.fuse") {
		w("")
		w("CPU time per GB read (user and system, every thread; median [min–max]): P1, the loader %s and `dd` %s; "+
			"(a), the zero file system %s and `dd` %s; P3, the loader %s. Two cores give 2 CPU-s per second of wall time.",
			r.fig("cpu.p1", cpuPerGB), r.fig("cpu.p1.dd", cpuPerGB), r.fig("cpu.fuse", cpuPerGB), r.fig("cpu.fuse.dd", cpuPerGB), r.fig("cpu.p3", cpuPerGB))
	}
	if r.has("rclone.off.p1") {
		w("")
		w("P8, rclone crypt mounts over the same MinIO (`rclone mount --read-only`, its other options at their defaults), the same file, the same cache states:")
		w("")
		w("| row | loader | rclone `--vfs-cache-mode off` | rclone `--vfs-cache-mode full` | loader ahead |")
		w("| --- | --- | --- | --- | --- |")
		type row struct {
			what, ours, theirs string
			unit               func(float64) string
			lower              bool
		}
		for _, x := range []row{
			{"P1 warm sequential", "p1", "p1", gbs, false},
			{"P2 cold first byte, offset 0", "p2.start", "p2.start", ms, true},
			{"P2 cold first byte, middle", "p2.mid", "p2.mid", ms, true},
			{"P3 cold sequential", "p3", "p3", gbs, false},
			{"P4 page cache kept", "p4", "p4", gbs, false},
			{"P6 peak RSS (P1–P4)", "rss.p3", "rss", mib, true},
		} {
			ours := r.med(x.ours)
			if x.ours == "rss.p3" {
				ours = max(r.max("rss.p1"), r.max("rss.p3"))
			}
			ahead := true
			for _, m := range []string{"off", "full"} {
				t := r.med("rclone." + m + "." + x.theirs)
				if x.theirs == "rss" {
					t = r.max("rclone." + m + ".rss")
				}
				if x.lower {
					ahead = ahead && ours < t
				} else {
					ahead = ahead && ours > t
				}
			}
			oursFig := r.fig(x.ours, x.unit)
			if x.ours == "rss.p3" {
				oursFig = mib(ours) + " (max)"
			}
			w("| %s | %s | %s | %s | %s |", x.what, oursFig, r.fig("rclone.off."+x.theirs, x.unit), r.fig("rclone.full."+x.theirs, x.unit), verdict(ahead))
		}
		w("")
		w("rclone's full cache mode keeps the decrypted file on disk (in its cache dir); the loader never writes plaintext. With `off` there is no local cache, so its \"warm\" read is another cold one.")
	}
	if len(r.notes) > 0 {
		w("")
		for _, n := range r.notes {
			w("- %s", n)
		}
	}
	return b.String()
}

// print writes every figure a partial run (--only) took, one a line, as
// "key: median [min–max]" (the notes went to stderr as they came).
func (r *results) print() {
	keys := slices.Sorted(maps.Keys(r.figs))
	for _, k := range keys {
		unit := gbs
		switch {
		case strings.HasPrefix(k, "rss."):
			unit = mib
		case strings.HasPrefix(k, "cpu."):
			unit = cpuPerGB
		case strings.HasPrefix(k, "p2.") || strings.HasSuffix(k, ".p99"):
			unit = ms
		case strings.HasSuffix(k, "iops"):
			unit = iops
		}
		fmt.Printf("%-16s %s\n", k+":", r.fig(k, unit))
	}
}
