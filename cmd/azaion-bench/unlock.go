package main

// `azaion-bench unlock` measures issue 4's memory figure: the peak RSS of
// `azaion-loader serve` while it unlocks the image archive of a ≥ 200 MB
// `docker save` tar into a real `docker load`, on a private dockerd.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/azaion/loader/control/unlock"
	"github.com/azaion/loader/control/unlock/dockertest"
	"github.com/azaion/loader/resources/refapi"
)

// unlockTarget is issue 4's bound on the loader's peak RSS during an unlock.
const unlockTarget = 100 << 20

// Bounds of the loader's start and one unlock.
const (
	loaderStartTimeout = 30 * time.Second
	unlockTimeout      = 10 * time.Minute
	dockerCallTimeout  = 2 * time.Minute
)

const unlockImage = "azaion-bench/unlock:bench"

type unlockConfig struct {
	size    int64
	runs    int
	loader  string
	out     string
	command string
}

// unlockRun is one unlock's figures.
type unlockRun struct {
	idle    int64         // the loader's VmRSS once it answers, before the unlock
	peak    int64         // the loader's VmHWM from POST /unlock to ready
	docker  int64         // the largest VmHWM seen of the loader's children (docker load)
	elapsed time.Duration // POST /unlock to ready
	plain   time.Duration // the same size of tar piped straight into docker load
}

func runUnlock(args []string) error {
	var cfg unlockConfig
	fset := flag.NewFlagSet("unlock", flag.ContinueOnError)
	fset.Int64Var(&cfg.size, "size", 210<<20, "size of the image's one file, in bytes (the tar is a few KiB more)")
	fset.IntVar(&cfg.runs, "runs", 3, "unlocks to measure")
	fset.StringVar(&cfg.loader, "loader", "bin/azaion-loader", "the azaion-loader binary")
	fset.StringVar(&cfg.out, "out", "BENCHMARKS.md", "the report to update")
	fset.StringVar(&cfg.command, "command", "", "the command that reproduces the run, for the report")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if cfg.command == "" {
		cfg.command = strings.Join(os.Args, " ")
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: it starts a private dockerd")
	}
	if cfg.size < 200e6 || cfg.runs < 1 {
		return errors.New("--size must be at least 200 MB and --runs at least 1")
	}
	loaderBin, err := filepath.Abs(cfg.loader)
	if err != nil {
		return err
	}
	// A short directory: the engine's socket path must fit in 108 bytes.
	work, err := os.MkdirTemp("/tmp", "azu")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	eng, err := dockertest.Launch()
	if err != nil {
		return err
	}
	defer eng.Stop()

	fragment := []byte(randHex(16))
	archive := filepath.Join(work, "images.enc")
	logf("sealing a %d-byte image tar into %s", cfg.size, archive)
	wantID, err := writeSealedImage(archive, cfg.size, fragment)
	if err != nil {
		return err
	}
	st, err := os.Stat(archive)
	if err != nil {
		return err
	}

	apiURL, closeAPI, err := startUnlockAPI(filepath.Join(work, "api"), fragment)
	if err != nil {
		return err
	}
	defer closeAPI()

	before := loadavg()
	var runs []unlockRun
	for i := range cfg.runs {
		if _, err := eng.Docker(nil, "image", "rm", "--force", unlockImage); err != nil && !strings.Contains(err.Error(), "No such image") {
			return err
		}
		r, err := unlockOnce(loaderBin, work, apiURL, archive, eng.Host, i)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		out, err := eng.Docker(nil, "image", "inspect", "--format", "{{.Id}}", unlockImage)
		if err != nil {
			return fmt.Errorf("run %d: unlock ready but %w", i+1, err)
		}
		if got := strings.TrimSpace(string(out)); got != wantID {
			return fmt.Errorf("run %d: loaded image ID %s, want %s", i+1, got, wantID)
		}
		if r.plain, err = plainLoad(eng, cfg.size); err != nil {
			return fmt.Errorf("run %d: baseline: %w", i+1, err)
		}
		logf("run %d: peak RSS %s (idle %s, docker CLI %s), %.1f s (plain docker load %.1f s), image %s loaded",
			i+1, mib(float64(r.peak)), mib(float64(r.idle)), mib(float64(r.docker)), r.elapsed.Seconds(), r.plain.Seconds(), wantID[:19])
		runs = append(runs, r)
	}
	section := unlockMarkdown(cfg, st.Size(), runs, before, loadavg())
	fmt.Println(section)
	return replaceSection(cfg.out, "<!-- unlock -->", "<!-- /unlock -->", section)
}

// writeSealedImage streams a WriteImageTar image of one random file of size
// bytes through unlock.Seal into path, so no plaintext tar touches the disk,
// and returns the image ID docker will report.
func writeSealedImage(path string, size int64, fragment []byte) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	idc := make(chan string, 1)
	go func() {
		id, err := dockertest.WriteImageTar(pw, unlockImage, size, rand.Reader)
		idc <- id
		pw.CloseWithError(err)
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := unlock.Seal(bw, pr, fragment, nil); err != nil {
		pr.CloseWithError(err)
		<-idc
		return "", err
	}
	id := <-idc
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return id, f.Close()
}

// plainLoad times the baseline: a tar of the same size written straight
// into `docker load`, no archive, no decryption, no loader. It removes the
// image afterwards.
func plainLoad(eng *dockertest.Engine, size int64) (time.Duration, error) {
	const tag = "azaion-bench/plain:bench"
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "load")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+eng.Host)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	_, werr := dockertest.WriteImageTar(stdin, tag, size, rand.Reader)
	stdin.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		return 0, fmt.Errorf("docker load: %v %v: %s", werr, err, strings.TrimSpace(stderr.String()))
	}
	d := time.Since(start)
	_, err = eng.Docker(nil, "image", "rm", "--force", tag)
	return d, err
}

// childrenPeak is the largest VmHWM of pid's child processes.
func childrenPeak(pid int) int64 {
	var peak int64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, c := range strings.Fields(string(b)) {
			var cpid int
			if _, err := fmt.Sscan(c, &cpid); err == nil {
				peak = max(peak, peakRSS(cpid))
			}
		}
	}
	return peak
}

// vmRSS is a process's resident set in bytes.
func vmRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(v, &kb)
			return kb << 10
		}
	}
	return -1
}

// startUnlockAPI serves the reference Resource API, with the bench user and
// the key fragment, on loopback.
func startUnlockAPI(dir string, fragment []byte) (url string, closeFn func(), err error) {
	ref, err := refapi.New(refapi.Config{
		Users:   []refapi.User{{ID: "1", Email: benchEmail, Password: benchPassword, Role: "operator"}},
		DataDir: dir, KeyFragment: fragment, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: ref.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// unlockOnce starts `azaion-loader serve` configured by its environment,
// resets its peak RSS once it answers, unlocks, and stops it: a loader that
// is ready starts no second unlock.
func unlockOnce(loaderBin, work, apiURL, archive, dockerHost string, i int) (unlockRun, error) {
	addr, err := freeAddr()
	if err != nil {
		return unlockRun{}, err
	}
	env := []string{"AZAION_CONFIG="}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AZAION_") && !strings.HasPrefix(kv, "GOMEMLIMIT=") &&
			!strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "DOCKER_HOST=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AZAION_API_URL="+apiURL,
		"AZAION_RESOURCE_KEY="+randHex(32),
		"AZAION_CACHE_DIR="+filepath.Join(work, "cache"),
		"AZAION_LISTEN="+addr,
		"AZAION_IMAGES_PATH="+archive,
		"AZAION_IMAGES="+unlockImage,
		"AZAION_HARDWARE=CPU: bench. GPU: none. Memory: 1024. DriveSerial: bench.",
		"AZAION_LOG_FORMAT=json",
		"DOCKER_HOST="+dockerHost)
	cmd := exec.Command(loaderBin, "serve")
	cmd.Env = env
	logPath := filepath.Join(work, fmt.Sprintf("loader-%d.log", i+1))
	lf, err := os.Create(logPath)
	if err != nil {
		return unlockRun{}, err
	}
	defer lf.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return unlockRun{}, fmt.Errorf("loader: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	fail := func(err error) (unlockRun, error) {
		b, _ := os.ReadFile(logPath)
		if len(b) > 1500 {
			b = b[len(b)-1500:]
		}
		return unlockRun{}, fmt.Errorf("%w; loader log tail:\n%s", err, b)
	}
	base := "http://" + addr
	if err := waitHTTP(base+"/health", loaderStartTimeout); err != nil {
		return fail(err)
	}
	pid := cmd.Process.Pid
	idle := vmRSS(pid)
	resetPeak(pid)

	start := time.Now()
	body, _ := json.Marshal(map[string]string{"email": benchEmail, "password": benchPassword})
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Post(base+"/unlock", "application/json", bytes.NewReader(body))
	if err != nil {
		return fail(fmt.Errorf("POST /unlock: %w", err))
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("POST /unlock: %s: %s", resp.Status, bytes.TrimSpace(rb)))
	}
	deadline := start.Add(unlockTimeout)
	var dockerPeak int64
	for {
		dockerPeak = max(dockerPeak, childrenPeak(pid))
		var st unlock.Status
		if err := getJSON(base+"/unlock/status", &st); err != nil {
			return fail(fmt.Errorf("GET /unlock/status: %w", err))
		}
		switch st.State {
		case unlock.StateReady:
			return unlockRun{idle: idle, peak: peakRSS(pid), docker: dockerPeak, elapsed: time.Since(start)}, nil
		case unlock.StateError:
			msg := ""
			if st.Error != nil {
				msg = *st.Error
			}
			return fail(fmt.Errorf("unlock failed at %s: %s", st.Step, msg))
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("unlock not ready after %v (state %s, %d of %d bytes)", unlockTimeout, st.State, st.BytesDone, st.BytesTotal))
		}
		select {
		case <-done:
			return fail(errors.New("loader exited during the unlock"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func unlockMarkdown(cfg unlockConfig, archiveSize int64, runs []unlockRun, loadBefore, loadAfter string) string {
	var idle, peaks, added, docker, secs, plain, rates, plainRates samples
	for _, r := range runs {
		idle = append(idle, float64(r.idle))
		peaks = append(peaks, float64(r.peak))
		added = append(added, float64(r.peak-r.idle))
		docker = append(docker, float64(r.docker))
		secs = append(secs, r.elapsed.Seconds())
		plain = append(plain, r.plain.Seconds())
		rates = append(rates, float64(archiveSize)/r.elapsed.Seconds())
		plainRates = append(plainRates, float64(archiveSize)/r.plain.Seconds())
	}
	mibRow := func(s samples) string {
		lo, hi := s.spread()
		return fmt.Sprintf("%.1f MiB | %.1f – %.1f MiB", s.median()/(1<<20), lo/(1<<20), hi/(1<<20))
	}
	secRow := func(s samples) string {
		lo, hi := s.spread()
		return fmt.Sprintf("%.1f s | %.1f – %.1f s", s.median(), lo, hi)
	}
	mbsRow := func(s samples) string {
		lo, hi := s.spread()
		return fmt.Sprintf("%.0f MB/s | %.0f – %.0f MB/s", s.median()/1e6, lo/1e6, hi/1e6)
	}
	verdict := "met"
	if _, hi := peaks.spread(); hi >= unlockTarget {
		verdict = "**not met**"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Unlock: peak RSS while decrypting into `docker load` (issue 4)\n\n")
	fmt.Fprintf(&b, "`azaion-loader serve` runs as a process, configured by its environment, against a private dockerd and the reference Resource API. "+
		"The archive is a %s (%d bytes) `docker save` tar of one random, incompressible file, sealed with `unlock.Seal`. "+
		"Each run starts a fresh loader (a ready task starts no second unlock), reads its VmRSS once `/health` answers, resets its VmHWM, "+
		"sends `POST /unlock`, polls `/unlock/status` every 50 ms to `ready`, reads VmHWM, and checks that `docker image inspect` gives the ID the tar was written with. "+
		"The image is removed between runs. The baseline pipes a tar of the same size straight into `docker load`, with no archive, no decryption and no loader. "+
		"The `docker load` CLI is a child of the loader, a process of its own: its peak is sampled every 50 ms and is not in the loader's figure.\n\n",
		mib(float64(archiveSize)), archiveSize)
	fmt.Fprintf(&b, "| figure | median | spread (%d runs) | target |\n|---|---|---|---|\n", len(runs))
	fmt.Fprintf(&b, "| loader peak RSS (VmHWM) during the unlock | %s | < 100 MiB: %s |\n", mibRow(peaks), verdict)
	fmt.Fprintf(&b, "| loader RSS before the unlock | %s | — |\n", mibRow(idle))
	fmt.Fprintf(&b, "| added by the unlock (peak − RSS before) | %s | — |\n", mibRow(added))
	fmt.Fprintf(&b, "| `docker load` CLI peak RSS (sampled) | %s | — |\n", mibRow(docker))
	fmt.Fprintf(&b, "| `POST /unlock` to `ready` | %s | — |\n", secRow(secs))
	fmt.Fprintf(&b, "| archive throughput (log in, key, decrypt, `docker load`) | %s | — |\n", mbsRow(rates))
	fmt.Fprintf(&b, "| baseline: plain tar into `docker load` | %s | — |\n", secRow(plain))
	fmt.Fprintf(&b, "| baseline throughput | %s | — |\n\n", mbsRow(plainRates))
	fmt.Fprintf(&b, "Machine: %s. Load average before %s, after %s. Command: `%s`.\n\n", machine(), loadBefore, loadAfter, cfg.command)
	return b.String()
}

// replaceSection puts section between begin and end in the report at path,
// in place of what was there, or appends it.
func replaceSection(path, begin, end, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := begin + "\n" + section + end
	if i, j := strings.Index(s, begin), strings.Index(s, end); i >= 0 && j > i {
		s = s[:i] + block + s[j+len(end):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s += "\n"
		}
		s += block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
