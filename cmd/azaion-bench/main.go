// Command azaion-bench runs the loader's benchmark (issue 5) on loopback:
// MinIO, the reference Resource API and `azaion-loader serve` with its
// mount, each side of every comparison measured in the same run. It writes
// the figures into BENCHMARKS.md between the markers of its run section.
//
//	azaion-bench --size 1073741824 --runs 5 --out BENCHMARKS.md
//
// It needs root (drop_caches, mounts), minio, openssl and dd; rclone for P8.
//
// `azaion-bench unlock` measures issue 4's figure instead: the loader's peak
// RSS while it unlocks a 210 MiB image archive into `docker load` (unlock.go).
//
// `azaion-bench wan` measures issue 13's figures with the CDN and the
// Resource API behind latency-and-bandwidth proxies (wan.go).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/azaion/loader/cmd/internal/buildinfo"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "zerofs" {
		if err := runZeroFS(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "azaion-bench zerofs:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "wan" {
		if err := runWAN(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "azaion-bench wan:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "unlock" {
		if err := runUnlock(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "azaion-bench unlock:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	flag.Int64Var(&cfg.size, "size", 1<<30, "resource size in bytes")
	flag.IntVar(&cfg.runs, "runs", 5, "runs of each figure")
	flag.IntVar(&cfg.randN, "random-reads", 2000, "random 4 KiB reads per P5 run")
	flag.StringVar(&cfg.loader, "loader", "bin/azaion-loader", "the azaion-loader binary")
	flag.StringVar(&cfg.minio, "minio", os.Getenv("MINIO_BIN"), "the minio binary")
	flag.StringVar(&cfg.rclone, "rclone", "", "the rclone binary for P8 (none: skip P8)")
	flag.StringVar(&cfg.out, "out", "BENCHMARKS.md", "the report to update")
	flag.StringVar(&cfg.perf, "perf", "", "directory for perf profiles of the loader during P1 and P3 (none: no profiles)")
	flag.StringVar(&cfg.command, "command", "", "the command that reproduces the run, for the report")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (the loader's and MinIO's logs) after the run")
	only := flag.String("only", "", "take only these groups of figures, comma-separated ("+strings.Join(groups, ", ")+
		"), print them and leave the report alone")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(buildinfo.Line("azaion-bench"))
		return
	}
	if *only != "" {
		cfg.only = map[string]bool{}
		for _, g := range strings.Split(*only, ",") {
			if !slices.Contains(groups, g) {
				fmt.Fprintf(os.Stderr, "azaion-bench: --only: no group %q (groups: %s)\n", g, strings.Join(groups, ", "))
				os.Exit(2)
			}
			cfg.only[g] = true
		}
	}
	if cfg.command == "" {
		cfg.command = strings.Join(os.Args, " ")
	}
	if cfg.minio == "" {
		cfg.minio, _ = exec.LookPath("minio")
	}
	if err := runAndReport(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "azaion-bench:", err)
		os.Exit(1)
	}
}

// workDir makes a fresh work directory; done removes it, unless keep asks
// to leave it (and its logs) for a look afterwards.
func workDir(prefix string, keep bool) (dir string, done func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	if keep {
		return dir, func() { logf("work directory kept: %s", dir) }, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

func runAndReport(cfg config) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the benchmark mounts and drops the page cache")
	}
	work, done, err := workDir("azaion-bench-", cfg.keep)
	if err != nil {
		return err
	}
	defer done()
	cfg.work = work
	before := loadavg()
	res, err := run(cfg)
	if err != nil {
		return err
	}
	if len(cfg.only) > 0 {
		res.print()
		return nil
	}
	section := res.markdown(cfg, before, loadavg())
	fmt.Println(section)
	return updateReport(cfg.out, cfg.size, section)
}

// updateReport replaces the section of this size between its markers in
// the report, or appends it.
func updateReport(path string, size int64, section string) error {
	return replaceSection(path, fmt.Sprintf("<!-- bench size=%d begin -->", size), fmt.Sprintf("<!-- bench size=%d end -->", size), section)
}
