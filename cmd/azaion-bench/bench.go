package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/aescbc"
)

// config is what one benchmark run is asked for.
type config struct {
	size    int64
	runs    int
	randN   int
	work    string
	loader  string
	minio   string
	rclone  string
	out     string
	command string
	keep    bool
	perf    string // directory for perf profiles of the loader, or ""
	// only, when not empty, names the groups of figures to take (see
	// groups); such a partial run prints its figures and writes no report.
	only map[string]bool
}

// groups are the figures --only can pick, in the order they are taken.
var groups = []string{"api", "warm", "random", "base", "cold", "rclone"}

// wants reports whether the run takes the figures of group g.
func (c config) wants(g string) bool { return len(c.only) == 0 || c.only[g] }

// results holds every figure by key, in the order they were taken.
type results struct {
	size  int64
	figs  map[string]samples
	notes []string
}

func (r *results) add(key string, v float64) { r.figs[key] = append(r.figs[key], v) }
func (r *results) note(f string, a ...any) {
	r.notes = append(r.notes, fmt.Sprintf(f, a...))
	fmt.Fprintf(os.Stderr, "note: "+f+"\n", a...)
}

func logf(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }

// writePlain writes size bytes of seeded random data and returns their SHA-256.
func writePlain(path string, size int64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 4<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h'}), size); err != nil {
		return [32]byte{}, err
	}
	if err := w.Flush(); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, f.Close()
}

func hashFile(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// run is the whole benchmark; it returns what BENCHMARKS.md reports.
func run(cfg config) (*results, error) {
	res := &results{size: cfg.size, figs: map[string]samples{}}
	plain := filepath.Join(cfg.work, "plain.bin")
	logf("writing %d bytes of random plaintext", cfg.size)
	want, err := writePlain(plain, cfg.size)
	if err != nil {
		return nil, err
	}
	st, err := startStack(cfg.work, cfg.minio, cfg.loader)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.startLoader(true); err != nil {
		return nil, err
	}

	// P7 and P6: /upload and /load through the control API. The first
	// upload puts the resource in place for every other figure.
	apiRuns := cfg.runs
	if !cfg.wants("api") {
		apiRuns = 1
	}
	for i := range apiRuns {
		resetPeak(st.loaderPID())
		dropCaches()
		start := time.Now()
		if err := st.upload(plain); err != nil {
			return nil, err
		}
		res.add("upload", rate(cfg.size, time.Since(start)))
		res.add("rss.upload", float64(peakRSS(st.loaderPID())))
		logf("upload %d: %.2f GB/s", i, res.figs["upload"][i]/1e9)
	}
	h := sha256.New()
	if n, err := st.load(h); err != nil || n != cfg.size {
		return nil, fmt.Errorf("load: %d bytes, %v", n, err)
	}
	if [32]byte(h.Sum(nil)) != want {
		return nil, errors.New("/load returned other bytes than were uploaded")
	}
	for i := range cfg.runs {
		if !cfg.wants("api") {
			break
		}
		resetPeak(st.loaderPID())
		start := time.Now()
		if _, err := st.load(io.Discard); err != nil {
			return nil, err
		}
		res.add("load", rate(cfg.size, time.Since(start)))
		res.add("rss.load", float64(peakRSS(st.loaderPID())))
		logf("load %d: %.2f GB/s", i, res.figs["load"][i]/1e9)
		encRate, decRate, fastRate := goCBC(cfg.size)
		res.add("go.encrypt", encRate)
		res.add("go.decrypt", decRate)
		res.add("aescbc.decrypt", fastRate)
	}

	// The mount's bytes, once, then the same ciphertext for openssl.
	if got, err := hashFile(st.mountPath()); err != nil || got != want {
		return nil, fmt.Errorf("the mount gives other bytes than were uploaded (%v)", err)
	}
	cipherBody, iv, err := assembleCipher(st, cfg.work)
	if err != nil {
		return nil, err
	}
	key := resources.AESKey(st.resourceKey)
	if err := opensslCheck(key, iv, cipherBody, want); err != nil {
		return nil, err
	}

	// P1 and P4: warm sequential reads, then again with the pages kept.
	for i := range cfg.runs {
		if !cfg.wants("warm") {
			break
		}
		dropCaches()
		resetPeak(st.loaderPID())
		stop := profile(cfg, "p1", i, st.loaderPID())
		cpu := cpuTime(st.loaderPID())
		d, ddCPU, err := ddReadCPU(st.mountPath())
		cpu = cpuTime(st.loaderPID()) - cpu
		stop()
		if err != nil {
			return nil, err
		}
		res.add("p1", rate(cfg.size, d))
		res.add("cpu.p1", perGB(cpu, cfg.size))
		res.add("cpu.p1.dd", perGB(ddCPU, cfg.size))
		res.add("rss.p1", float64(peakRSS(st.loaderPID())))
		d, err = ddRead(st.mountPath())
		if err != nil {
			return nil, err
		}
		res.add("p4", rate(cfg.size, d))
		logf("P1 %d: %.2f GB/s, P4 %.2f GB/s", i, res.figs["p1"][i]/1e9, res.figs["p4"][i]/1e9)
	}
	// P5: random 4 KiB reads, warm, against the plaintext in a local file.
	for range cfg.runs {
		if !cfg.wants("random") {
			break
		}
		dropCaches()
		iops, p99, err := randomReads(st.mountPath(), cfg.size, cfg.randN)
		if err != nil {
			return nil, err
		}
		res.add("p5.iops", iops)
		res.add("p5.p99", p99.Seconds())
		dropCaches()
		iops, p99, err = randomReads(plain, cfg.size, cfg.randN)
		if err != nil {
			return nil, err
		}
		res.add("p5.local.iops", iops)
		res.add("p5.local.p99", p99.Seconds())
	}
	// P1 baselines: the FUSE ceiling, openssl, and the disk.
	if cfg.wants("base") {
		if err := zeroFS(cfg, res); err != nil {
			return nil, err
		}
	}
	for range cfg.runs {
		if !cfg.wants("base") {
			break
		}
		dropCaches()
		d, err := timed("openssl", "enc", "-d", "-aes-256-cbc", "-K", hex.EncodeToString(key), "-iv", hex.EncodeToString(iv), "-in", cipherBody, "-out", "/dev/null")
		if err != nil {
			return nil, err
		}
		res.add("openssl", rate(cfg.size, d))
		// The disk under P1: the cached ciphertext itself, read alike.
		dropCaches()
		d, err = ddRead(filepath.Join(st.cacheDir, benchFolder, benchName+".big"))
		if err != nil {
			return nil, err
		}
		res.add("disk", rate(cfg.size, d))
	}

	// P2, P3: cold, every run with a fresh loader and an empty cache.
	mid := cfg.size / 2 &^ 4095
	for i := range cfg.runs {
		if !cfg.wants("cold") {
			break
		}
		for _, c := range []struct {
			key string
			off int64
		}{{"p2.start", 0}, {"p2.mid", mid}} {
			// The page cache goes before the loader starts, not after:
			// a loader whose own code was dropped would measure the disk.
			st.stopLoader()
			dropCaches()
			if err := st.startLoader(true); err != nil {
				return nil, err
			}
			d, err := firstByte(st.mountPath(), c.off)
			if err != nil {
				return nil, err
			}
			res.add(c.key, d.Seconds())
		}
		st.stopLoader()
		dropCaches()
		if err := st.startLoader(true); err != nil {
			return nil, err
		}
		resetPeak(st.loaderPID())
		stop := profile(cfg, "p3", i, st.loaderPID())
		cpu := cpuTime(st.loaderPID())
		d, err := ddRead(st.mountPath())
		cpu = cpuTime(st.loaderPID()) - cpu
		stop()
		if err != nil {
			return nil, err
		}
		res.add("p3", rate(cfg.size, d))
		res.add("cpu.p3", perGB(cpu, cfg.size))
		res.add("rss.p3", float64(peakRSS(st.loaderPID())))
		// Baselines: a plain download, and the seed's download-then-decrypt.
		dropCaches()
		d, err = plainDownload(st)
		if err != nil {
			return nil, err
		}
		res.add("p3.download", rate(cfg.size, d))
		dropCaches()
		d, err = seedFirstByte(st, key, cfg.work)
		if err != nil {
			return nil, err
		}
		res.add("p2.seed", d.Seconds())
		logf("P2 %d: %.1f ms / %.1f ms (seed %.0f ms); P3 %.2f GB/s (download %.2f GB/s)", i,
			res.figs["p2.start"][i]*1e3, res.figs["p2.mid"][i]*1e3, res.figs["p2.seed"][i]*1e3,
			res.figs["p3"][i]/1e9, res.figs["p3.download"][i]/1e9)
	}
	st.stopLoader()

	if !cfg.wants("rclone") {
		res.note("rclone: not asked for")
	} else if _, err := os.Stat(cfg.rclone); cfg.rclone != "" && err != nil {
		res.note("P8 not run: no rclone binary at %s", cfg.rclone)
	} else if cfg.rclone != "" {
		if err := rcloneBench(cfg, st, res, want); err != nil {
			res.note("rclone: %v", err)
		}
	} else {
		res.note("rclone: not run (no binary)")
	}
	return res, nil
}

// goCBC is Go's AES-256-CBC encrypt and decrypt speed alone, one stream on
// one core, over size bytes in 64 MiB pieces, and the decrypt speed of the
// loader's own aescbc, the same way.
func goCBC(size int64) (enc, dec, fast float64) {
	key := make([]byte, 32)
	block, _ := aes.NewCipher(key)
	buf := make([]byte, min(size, 64<<20)&^15)
	iv := make([]byte, 16)
	e := cipher.NewCBCEncrypter(block, iv)
	start := time.Now()
	for done := int64(0); done < size; done += int64(len(buf)) {
		e.CryptBlocks(buf, buf)
	}
	enc = rate(size, time.Since(start))
	d := cipher.NewCBCDecrypter(block, iv)
	start = time.Now()
	for done := int64(0); done < size; done += int64(len(buf)) {
		d.CryptBlocks(buf, buf)
	}
	dec = rate(size, time.Since(start))
	fb, _ := aescbc.NewCipher(key)
	f := aescbc.NewCBCDecrypter(fb, iv)
	start = time.Now()
	for done := int64(0); done < size; done += int64(len(buf)) {
		f.CryptBlocks(buf, buf)
	}
	return enc, dec, rate(size, time.Since(start))
}

// assembleCipher writes the resource's ciphertext without its IV (the
// small part from the Resource API's store, the big part from the loader's
// cache) for openssl, and returns its path and the IV.
func assembleCipher(st *stack, work string) (string, []byte, error) {
	small, err := os.ReadFile(filepath.Join(st.apiData, benchFolder, benchName+".small"))
	if err != nil {
		return "", nil, err
	}
	big, err := os.Open(filepath.Join(st.cacheDir, benchFolder, benchName+".big"))
	if err != nil {
		return "", nil, err
	}
	defer big.Close()
	path := filepath.Join(work, "cipher.body")
	f, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	f.Write(small[16:])
	if _, err := io.Copy(f, big); err != nil {
		return "", nil, err
	}
	return path, small[:16], f.Close()
}

// opensslCheck decrypts the ciphertext with openssl once and checks it.
func opensslCheck(key, iv []byte, body string, want [32]byte) error {
	cmd := exec.Command("openssl", "enc", "-d", "-aes-256-cbc", "-K", hex.EncodeToString(key), "-iv", hex.EncodeToString(iv), "-in", body)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	h := sha256.New()
	io.Copy(h, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("openssl: %w", err)
	}
	if [32]byte(h.Sum(nil)) != want {
		return errors.New("openssl decrypts the cached ciphertext to other bytes")
	}
	return nil
}

// zeroFS measures P1(a): the zero file system read the same way.
func zeroFS(cfg config, res *results) error {
	dir := filepath.Join(cfg.work, "zero")
	os.MkdirAll(dir, 0o755)
	self, _ := os.Executable()
	cmd := exec.Command(self, "zerofs", dir, fmt.Sprint(cfg.size))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		exec.Command("umount", dir).Run()
		cmd.Wait()
	}()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		return fmt.Errorf("zerofs did not start: %q", line)
	}
	for range cfg.runs {
		dropCaches()
		cpu := cpuTime(cmd.Process.Pid)
		d, ddCPU, err := ddReadCPU(filepath.Join(dir, "zero"))
		cpu = cpuTime(cmd.Process.Pid) - cpu
		if err != nil {
			return err
		}
		res.add("fuse", rate(cfg.size, d))
		res.add("cpu.fuse", perGB(cpu, cfg.size))
		res.add("cpu.fuse.dd", perGB(ddCPU, cfg.size))
		d, err = ddRead(filepath.Join(dir, "zero"))
		if err != nil {
			return err
		}
		res.add("fuse.warm", rate(cfg.size, d))
	}
	return nil
}

// plainDownload GETs the whole big part to nowhere with the S3 SDK the
// loader uses.
func plainDownload(st *stack) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := st.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(benchFolder), Key: aws.String(benchName + ".big")})
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	if _, err := io.CopyBuffer(io.Discard, out.Body, make([]byte, 1<<20)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// seedFirstByte is the seed's way to the first byte: download the whole
// big part, decrypt it into a plaintext file, then read 4 KiB of it.
func seedFirstByte(st *stack, key []byte, work string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	small, err := os.ReadFile(filepath.Join(st.apiData, benchFolder, benchName+".small"))
	if err != nil {
		return 0, err
	}
	out, err := st.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(benchFolder), Key: aws.String(benchName + ".big")})
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	path := filepath.Join(work, "seed.plain")
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	block, _ := aes.NewCipher(key)
	dec := cipher.NewCBCDecrypter(block, small[:16])
	r := io.MultiReader(bytes.NewReader(small[16:]), out.Body)
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(r, buf)
		n &^= 15
		dec.CryptBlocks(buf[:n], buf[:n])
		f.Write(buf[:n])
		if err != nil {
			break
		}
	}
	p := make([]byte, 4096)
	if _, err := f.ReadAt(p, 0); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// profile records the loader's CPU with perf during the first run of a
// figure, when asked to, and writes perf's report next to its data.
func profile(cfg config, what string, run, pid int) (stop func()) {
	if cfg.perf == "" || run != 0 {
		return func() {}
	}
	os.MkdirAll(cfg.perf, 0o755)
	data := filepath.Join(cfg.perf, what+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", fmt.Sprint(pid), "-o", data)
	if err := cmd.Start(); err != nil {
		logf("perf: %v", err)
		return func() {}
	}
	time.Sleep(300 * time.Millisecond) // perf attaches
	return func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		out, _ := exec.Command("perf", "report", "--stdio", "--no-children", "--percent-limit", "1.5", "-g", "none", "-i", data).Output()
		os.WriteFile(filepath.Join(cfg.perf, what+".txt"), out, 0o644)
	}
}
