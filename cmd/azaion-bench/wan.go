package main

// `azaion-bench wan` measures issue 13's WAN scenario: the CDN (MinIO) and
// the Resource API behind cdntest proxies that add latency each way and
// cap every CDN connection's rate, as a distant S3-style CDN does. Each of
// the loader's figures is taken against its baselines through the same
// proxy in the same run: parallel ranged GETs, the original loader's
// whole-download-then-decrypt, and rclone mounts when the binary is there.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/cdn/cdntest"
)

type wanConfig struct {
	size       int64
	runs       int
	latency    time.Duration // added each way
	rate       int64         // bytes/s per CDN connection
	streams    int           // the loader's streams, for the N-GET baseline
	readers    int           // W6's concurrent readers
	readerSize int64         // W6's size of each reader's resource
	loader     string
	minio      string
	rclone     string
	out        string
	command    string
	keep       bool
}

// The original loader's whole-object download (boto3's transfer manager).
const (
	origWorkers = 10
	origPart    = 8 << 20
)

// wanTimeout bounds each figure's request or read.
const wanTimeout = 10 * time.Minute

func runWAN(args []string) error {
	var cfg wanConfig
	fl := flag.NewFlagSet("wan", flag.ExitOnError)
	fl.Int64Var(&cfg.size, "size", 256<<20, "the big resource's size in bytes (W1–W3)")
	fl.IntVar(&cfg.runs, "runs", 3, "runs of each figure")
	fl.DurationVar(&cfg.latency, "latency", 20*time.Millisecond, "latency the proxies add each way (the round trip gains twice it)")
	fl.Int64Var(&cfg.rate, "rate", 25e6, "bytes per second each CDN connection carries at most")
	fl.IntVar(&cfg.streams, "streams", 8, "parallel ranged GETs of the N-stream baseline (the loader's cdn_streams)")
	fl.IntVar(&cfg.readers, "readers", 16, "W6's concurrent cold readers, one resource each")
	fl.Int64Var(&cfg.readerSize, "reader-size", 32<<20, "W6's size of each reader's resource in bytes")
	fl.StringVar(&cfg.loader, "loader", "bin/azaion-loader", "the azaion-loader binary")
	fl.StringVar(&cfg.minio, "minio", os.Getenv("MINIO_BIN"), "the minio binary")
	fl.StringVar(&cfg.rclone, "rclone", "", "the rclone binary (none or missing: rclone not run)")
	fl.StringVar(&cfg.out, "out", "BENCHMARKS.md", "the report to update (\"\": print only)")
	fl.StringVar(&cfg.command, "command", "", "the command that reproduces the run, for the report")
	fl.BoolVar(&cfg.keep, "keep", false, "keep the work directory after the run")
	fl.Parse(args)
	if cfg.command == "" {
		cfg.command = strings.Join(os.Args, " ")
	}
	if cfg.minio == "" {
		cfg.minio, _ = exec.LookPath("minio")
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: the benchmark mounts and drops the page cache")
	}
	work, done, err := workDir("azaion-bench-wan-", cfg.keep)
	if err != nil {
		return err
	}
	defer done()
	before := loadavg()
	res, err := wanRun(cfg, work)
	if err != nil {
		return err
	}
	section := res.wanMarkdown(cfg, before, loadavg())
	fmt.Println(section)
	if cfg.out == "" {
		return nil
	}
	return replaceSection(cfg.out, "<!-- wan -->", "<!-- /wan -->", section)
}

func wanRun(cfg wanConfig, work string) (*results, error) {
	res := &results{size: cfg.size, figs: map[string]samples{}}
	plain, small := filepath.Join(work, "plain.bin"), filepath.Join(work, "reader.bin")
	logf("writing %d and %d bytes of random plaintext", cfg.size, cfg.readerSize)
	want, err := writePlain(plain, cfg.size)
	if err != nil {
		return nil, err
	}
	wantSmall, err := writePlain(small, cfg.readerSize)
	if err != nil {
		return nil, err
	}
	st, err := startStack(work, cfg.minio, cfg.loader)
	if err != nil {
		return nil, err
	}
	defer st.Close()

	// The proxies: unshaped while the resources go up, shaped from then on.
	cdnProxy, err := cdntest.ListenProxy(st.minioURL)
	if err != nil {
		return nil, err
	}
	defer cdnProxy.Close()
	apiProxy, err := cdntest.ListenProxy(st.apiURL)
	if err != nil {
		return nil, err
	}
	defer apiProxy.Close()
	conf := st.minio.Config("")
	conf.Host = cdnProxy.URL()
	if err := st.ref.Put("", "cdn.yaml", conf.YAML()); err != nil {
		return nil, err
	}
	st.apiURL = apiProxy.URL()

	if err := st.startLoader(true); err != nil {
		return nil, err
	}
	logf("uploading the resources")
	if err := st.upload(plain); err != nil {
		return nil, err
	}
	names := make([]string, cfg.readers)
	for i := range names {
		names[i] = fmt.Sprintf("wan-%02d.bin", i)
		if err := st.uploadAs(small, names[i]); err != nil {
			return nil, err
		}
	}
	shape := cdntest.Shape{Latency: cfg.latency, Rate: cfg.rate}
	cdnProxy.SetShape(shape)
	apiProxy.SetShape(shape)
	key := resources.AESKey(st.resourceKey)
	bigSize, err := objectSize(st, benchName+".big")
	if err != nil {
		return nil, err
	}
	get, err := presign(st, cdnProxy.URL(), benchName+".big")
	if err != nil {
		return nil, err
	}

	mid := cfg.size / 2 &^ 4095
	for i := range cfg.runs {
		// W1 and W5: cold sequential through the mount.
		if err := coldLoader(st); err != nil {
			return nil, err
		}
		resetPeak(st.loaderPID())
		conns := cdnProxy.Conns()
		d, err := ddRead(st.mountPath())
		if err != nil {
			return nil, err
		}
		res.add("w1", rate(cfg.size, d))
		res.add("rss.w1", float64(peakRSS(st.loaderPID())))
		res.add("w1.conns", float64(cdnProxy.Conns()-conns))
		if got, err := hashFile(st.mountPath()); err != nil || got != want {
			return nil, fmt.Errorf("the mount gives other bytes than were uploaded (%v)", err)
		}

		// W1's baselines through the same proxy.
		for _, n := range []int{1, cfg.streams} {
			dropCaches()
			d, err := rangedGets(get, bigSize, n)
			if err != nil {
				return nil, err
			}
			res.add(fmt.Sprintf("w1.get%d", n), rate(bigSize, d))
		}
		dropCaches()
		d, err = originalWay(st, get, bigSize, key, want, cfg.size)
		if err != nil {
			return nil, err
		}
		res.add("w1.orig", rate(cfg.size, d))

		// W2: open + 4 KiB, cold, at offset 0 and in the middle.
		for _, c := range []struct {
			key string
			off int64
		}{{"w2.start", 0}, {"w2.mid", mid}} {
			if err := coldLoader(st); err != nil {
				return nil, err
			}
			cdnConns, apiConns := cdnProxy.Conns(), apiProxy.Conns()
			d, err := firstByte(st.mountPath(), c.off)
			if err != nil {
				return nil, err
			}
			res.add(c.key, d.Seconds())
			res.add(c.key+".cdn", float64(cdnProxy.Conns()-cdnConns))
			res.add(c.key+".api", float64(apiProxy.Conns()-apiConns))
		}

		// W3 and W5: /load cold, hashed.
		if err := coldLoader(st); err != nil {
			return nil, err
		}
		resetPeak(st.loaderPID())
		h := sha256.New()
		start := time.Now()
		n, err := st.load(h)
		d = time.Since(start)
		if err != nil || n != cfg.size || [32]byte(h.Sum(nil)) != want {
			return nil, fmt.Errorf("/load: %d bytes, other than uploaded or %v", n, err)
		}
		res.add("w3", rate(cfg.size, d))
		res.add("rss.w3", float64(peakRSS(st.loaderPID())))

		// W4 and W5: POST /prefetch cold, until /status says done.
		if err := coldLoader(st); err != nil {
			return nil, err
		}
		resetPeak(st.loaderPID())
		start = time.Now()
		steps, err := st.prefetch(cfg.size)
		d = time.Since(start)
		if err != nil {
			return nil, err
		}
		res.add("w4", rate(cfg.size, d))
		res.add("w4.steps", float64(steps))
		res.add("rss.w4", float64(peakRSS(st.loaderPID())))

		// W6: concurrent cold readers, one resource each.
		if err := coldLoader(st); err != nil {
			return nil, err
		}
		resetPeak(st.loaderPID())
		if err := concurrentReaders(st, names, cfg.readerSize, wantSmall, res); err != nil {
			return nil, err
		}
		res.add("rss.w6", float64(peakRSS(st.loaderPID())))
		logf("run %d: W1 %.1f MB/s (1 GET %.1f, %d GETs %.1f, original %.1f), W2 %.0f/%.0f ms, W3 %.1f MB/s, W4 %.1f MB/s, RSS %s/%s, W6 RSS %s", i+1,
			res.figs["w1"][i]/1e6, res.figs["w1.get1"][i]/1e6, cfg.streams, res.figs[fmt.Sprintf("w1.get%d", cfg.streams)][i]/1e6,
			res.figs["w1.orig"][i]/1e6, res.figs["w2.start"][i]*1e3, res.figs["w2.mid"][i]*1e3, res.figs["w3"][i]/1e6, res.figs["w4"][i]/1e6,
			mib(res.figs["rss.w1"][i]), mib(res.figs["rss.w3"][i]), mib(res.figs["rss.w6"][i]))
	}
	st.stopLoader()

	if cfg.rclone == "" {
		res.note("rclone: not run (no rclone binary; `make bench-wan` uses one already built, e.g. by `make bench`)")
	} else if _, err := os.Stat(cfg.rclone); err != nil {
		res.note("rclone: not run (no binary at %s)", cfg.rclone)
	} else {
		// The proxies take the upload unshaped, then shape again.
		cdnProxy.SetShape(cdntest.Shape{})
		err := wanRclone(cfg, work, st, cdnProxy, shape, plain, res)
		if err != nil {
			res.note("rclone: %v", err)
		}
	}
	return res, nil
}

// coldLoader restarts the loader with an empty cache; the page cache goes
// before it starts, so its own code is not read from disk during a figure.
func coldLoader(st *stack) error {
	st.stopLoader()
	dropCaches()
	return st.startLoader(true)
}

func objectSize(st *stack, key string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := st.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(benchFolder), Key: aws.String(key)})
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

// presign is a signed GET URL of the object through endpoint, valid for an
// hour; a Range header may be added to it.
func presign(st *stack, endpoint, key string) (string, error) {
	c := s3.New(s3.Options{
		Region: region, BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(st.minio.AccessKey, st.minio.SecretKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(benchFolder), Key: aws.String(key)},
		s3.WithPresignExpires(time.Hour))
	if err != nil {
		return "", err
	}
	return r.URL, nil
}

// ownClient is an HTTP client with a connection of its own.
func ownClient() *http.Client {
	return &http.Client{Timeout: wanTimeout, Transport: &http.Transport{MaxConnsPerHost: 1}}
}

// getRange GETs bytes [off, off+n) of url into w, or into buf when w is nil.
func getRange(hc *http.Client, url string, off, n int64, w io.Writer, buf []byte) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("ranged GET: %s", resp.Status)
	}
	if w == nil {
		_, err = io.ReadFull(resp.Body, buf[:n])
		return err
	}
	got, err := io.CopyBuffer(w, resp.Body, make([]byte, 1<<20))
	if err == nil && got != n {
		err = fmt.Errorf("ranged GET: %d bytes of %d", got, n)
	}
	return err
}

// rangedGets GETs the whole object as n equal ranges in parallel, each on
// a connection of its own, to nowhere; it returns the time to the last.
func rangedGets(url string, size int64, n int) (time.Duration, error) {
	per := (size + int64(n) - 1) / int64(n)
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		off := int64(i) * per
		l := min(per, size-off)
		go func() {
			if l <= 0 {
				errs <- nil
				return
			}
			hc := ownClient()
			defer hc.CloseIdleConnections()
			errs <- getRange(hc, url, off, l, io.Discard, nil)
		}()
	}
	var err error
	for range n {
		err = errors.Join(err, <-errs)
	}
	return time.Since(start), err
}

// originalWay is the original loader's way to a plaintext: the small part
// from the Resource API's store (local here, no round trip), the whole big
// part as origPart ranges over origWorkers connections into memory, then
// AES-256-CBC over all of it. It returns the time to the last plaintext
// byte and checks the plaintext after.
func originalWay(st *stack, url string, bigSize int64, key []byte, want [32]byte, plainSize int64) (time.Duration, error) {
	small, err := os.ReadFile(filepath.Join(st.apiData, benchFolder, benchName+".small"))
	if err != nil {
		return 0, err
	}
	start := time.Now()
	head := int64(len(small) - 16)
	body := make([]byte, head+bigSize)
	copy(body, small[16:])
	big := body[head:]
	parts := make(chan int64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ferr error
	for range origWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := ownClient()
			defer hc.CloseIdleConnections()
			for off := range parts {
				l := min(origPart, bigSize-off)
				if err := getRange(hc, url, off, l, nil, big[off:off+l]); err != nil {
					mu.Lock()
					ferr = errors.Join(ferr, err)
					mu.Unlock()
				}
			}
		}()
	}
	for off := int64(0); off < bigSize; off += origPart {
		parts <- off
	}
	close(parts)
	wg.Wait()
	if ferr != nil {
		return 0, ferr
	}
	block, _ := aes.NewCipher(key)
	n := int64(len(body)) &^ 15
	cipher.NewCBCDecrypter(block, small[:16]).CryptBlocks(body[:n], body[:n])
	d := time.Since(start)
	if int64(len(body)) < plainSize || sha256.Sum256(body[:plainSize]) != want {
		return 0, errors.New("the original way decrypts to other bytes")
	}
	return d, nil
}

// concurrentReaders reads every name through the mount at once, each with
// `dd bs=1M`'s pattern, and records W6: that each gave its exact bytes, the
// slowest and fastest reader's rate, and whether every reader had read its
// first MiB before the first reader finished (all progressed together).
func concurrentReaders(st *stack, names []string, size int64, want [32]byte, res *results) error {
	type reader struct {
		first, done time.Duration
		err         error
	}
	rs := make([]reader, len(names))
	var wg sync.WaitGroup
	var failed atomic.Bool
	start := time.Now()
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &rs[i]
			f, err := os.Open(filepath.Join(st.mount, benchFolder, name))
			if err != nil {
				r.err = err
				return
			}
			defer f.Close()
			h := sha256.New()
			buf := make([]byte, 1<<20)
			var n int64
			for !failed.Load() {
				m, err := f.Read(buf)
				h.Write(buf[:m])
				n += int64(m)
				if r.first == 0 && n >= 1<<20 {
					r.first = time.Since(start)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					r.err = err
					break
				}
			}
			r.done = time.Since(start)
			switch {
			case r.err != nil:
			case n != size:
				r.err = fmt.Errorf("%s: %d bytes of %d", name, n, size)
			case [32]byte(h.Sum(nil)) != want:
				r.err = fmt.Errorf("%s: other bytes than were uploaded", name)
			}
			if r.err != nil {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	firstDone, lastFirst := rs[0].done, time.Duration(0)
	slow, fast := rs[0].done, rs[0].done
	for _, r := range rs {
		if r.err != nil {
			return fmt.Errorf("W6 reader: %w", r.err)
		}
		firstDone, slow, fast = min(firstDone, r.done), max(slow, r.done), min(fast, r.done)
		lastFirst = max(lastFirst, r.first)
	}
	together := 0.0
	if lastFirst < firstDone {
		together = 1
	}
	res.add("w6.together", together)
	res.add("w6.lastfirst", lastFirst.Seconds())
	res.add("w6.firstdone", firstDone.Seconds())
	res.add("w6.slow", rate(size, slow))
	res.add("w6.fast", rate(size, fast))
	res.add("w6.total", rate(size*int64(len(names)), slow))
	return nil
}

// wanRclone measures W1 for rclone crypt mounts through the shaped CDN
// proxy: `--vfs-cache-mode off`, alone and with parallel chunk streams.
func wanRclone(cfg wanConfig, work string, st *stack, p *cdntest.Proxy, shape cdntest.Shape, plain string, res *results) error {
	dir := filepath.Join(work, "rclone")
	os.MkdirAll(dir, 0o700)
	p1, err := obscure(cfg.rclone, randHex(16))
	if err != nil {
		return fmt.Errorf("rclone obscure: %w", err)
	}
	p2, err := obscure(cfg.rclone, randHex(16))
	if err != nil {
		return err
	}
	direct, err := rcloneConfigAt(dir, "direct.conf", st, st.minioURL, p1, p2)
	if err != nil {
		return err
	}
	far, err := rcloneConfigAt(dir, "wan.conf", st, p.URL(), p1, p2)
	if err != nil {
		return err
	}
	logf("rclone: uploading the plaintext to the crypt remote")
	if out, err := exec.Command(cfg.rclone, "--config", direct, "copyto", plain, "cb:"+benchName).CombinedOutput(); err != nil {
		return fmt.Errorf("rclone copyto: %w: %s", err, bytes.TrimSpace(out))
	}
	p.SetShape(shape)
	mnt, cache := filepath.Join(dir, "mnt"), filepath.Join(dir, "cache")
	for _, m := range []struct {
		key   string
		extra []string
	}{{"w1.rclone.off", nil}, {"w1.rclone.streams", []string{"--vfs-read-chunk-streams", fmt.Sprint(cfg.streams)}}} {
		for range cfg.runs {
			os.RemoveAll(cache)
			dropCaches()
			rm, err := startRclone(cfg.rclone, far, mnt, cache, "off", true, m.extra...)
			if err != nil {
				return err
			}
			resetPeak(rm.cmd.Process.Pid)
			d, err := ddRead(filepath.Join(mnt, benchName))
			rss := peakRSS(rm.cmd.Process.Pid)
			rm.stop()
			if err != nil {
				return err
			}
			res.add(m.key, rate(cfg.size, d))
			res.add("rss."+m.key, float64(rss))
			logf("%s: %.1f MB/s, RSS %s", m.key, rate(cfg.size, d)/1e6, mib(float64(rss)))
		}
	}
	return nil
}

func mbs(v float64) string { return fmt.Sprintf("%.1f MB/s", v/1e6) }

// wanMarkdown renders BENCHMARKS.md's WAN section.
func (r *results) wanMarkdown(cfg wanConfig, loadBefore, loadAfter string) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f+"\n", a...) }
	rtt := 2 * cfg.latency.Seconds()
	getN := fmt.Sprintf("w1.get%d", cfg.streams)
	w("## WAN: a distant CDN (issue 13)")
	w("")
	w("The CDN (MinIO) and the Resource API behind `cdntest` proxies on loopback that add %v each way (%v round trip) "+
		"and cap each CDN connection at %.0f MB/s; the loader's cdn.yaml host and api_url point at the proxies. "+
		"Every loader figure starts a fresh loader with an empty cache after dropping the page cache. "+
		"Baselines go through the same shaped proxy in the same run: ranged GETs with a presigned URL, "+
		"each on a connection of its own; the original loader's way (%d parallel %d MiB ranged GETs of the whole big part "+
		"into memory, then AES-256-CBC over all of it, timed to the last plaintext byte; the small part read locally); "+
		"rclone crypt mounts when its binary is there. The loader runs with the environment of the bench "+
		"(so `AZAION_CDN_STREAMS` passes through when set). W6 reads %d resources of %d MiB at once, one reader each.",
		cfg.latency, 2*cfg.latency, float64(cfg.rate)/1e6, origWorkers, origPart>>20, cfg.readers, cfg.readerSize>>20)
	w("")
	w("Machine: %s.  ", machine())
	w("Load average (1, 5, 15 min) before the run: %s; after: %s. The machine is shared with other jobs; figures vary with its load.  ", loadBefore, loadAfter)
	w("Date: %s.  ", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	w("Resource: %d bytes (%.0f MiB) of random bytes; %d runs of each figure, shown as median [min–max].  ", cfg.size, float64(cfg.size)/(1<<20), cfg.runs)
	w("Command: `%s`", cfg.command)
	w("")
	w("| # | what | loader | baseline (same run, same proxy) | ratio | target | |")
	w("| --- | --- | --- | --- | --- | --- | --- |")
	w1 := r.med("w1")
	if r.has("w1.rclone.streams") {
		x := w1 / r.med("w1.rclone.streams")
		w("| W1 | cold sequential, `dd bs=1M` through the mount | %s | rclone mount, `--vfs-cache-mode off --vfs-read-chunk-streams %d`: %s | %.2f× | ≥ 1.2× | %s |",
			r.fig("w1", mbs), cfg.streams, r.fig("w1.rclone.streams", mbs), x, verdict(x >= 1.2))
		w("| W1 | | | rclone mount, `--vfs-cache-mode off`: %s | %.2f× | report | |", r.fig("w1.rclone.off", mbs), w1/r.med("w1.rclone.off"))
	} else {
		w("| W1 | cold sequential, `dd bs=1M` through the mount | %s | rclone mount (`off`, and with `--vfs-read-chunk-streams %d`): not run | — | ≥ 1.2× the latter | not run |",
			r.fig("w1", mbs), cfg.streams)
	}
	x := w1 / r.med(getN)
	w("| W1 | | | %d parallel ranged GETs, aggregate: %s | %.2f× | ≥ 0.9× | %s |", cfg.streams, r.fig(getN, mbs), x, verdict(x >= 0.9))
	w("| W1 | | | 1 ranged GET of the whole big part: %s | %.2f× | report | |", r.fig("w1.get1", mbs), w1/r.med("w1.get1"))
	x = w1 / r.med("w1.orig")
	w("| W1 | | | the original loader's way, download then decrypt, to the last byte: %s | %.2f× | > 1× | %s |", r.fig("w1.orig", mbs), x, verdict(x > 1))
	for _, c := range []struct {
		key, what string
		rtts      float64
	}{{"w2.start", "offset 0", 2}, {"w2.mid", "the middle", 3}} {
		bound := c.rtts*rtt + 0.010
		m := r.med(c.key)
		w("| W2 | open + 4 KiB read at %s, cold | %s | %.0f RTT + 10 ms = %s | %.2f× the bound | ≤ %.0f RTT + 10 ms | %s |",
			c.what, r.fig(c.key, ms), c.rtts, ms(bound), m/bound, c.rtts, verdict(m <= bound))
	}
	x = r.med("w3") / w1
	w("| W3 | `POST /load` cold, body hashed | %s | W1, the mount: %s | %.2f× | ≥ 1× | %s |", r.fig("w3", mbs), r.fig("w1", mbs), x, verdict(x >= 1))
	x = r.med("w4") / w1
	w("| W4 | `POST /prefetch` cold, until `/status` says done (of %s; the issue asks 1 GiB) | %s | W1, the mount: %s | %.2f× | ≥ 1× | %s |",
		mib(float64(cfg.size)), r.fig("w4", mbs), r.fig("w1", mbs), x, verdict(x >= 1))
	w("| W4 | progress: distinct byte counts `/status` showed while it ran | %.0f (min of the runs) | — | — | more than 1 | %s |",
		r.min("w4.steps"), verdict(r.min("w4.steps") > 1))
	for _, c := range []struct{ key, what string }{{"rss.w1", "W1"}, {"rss.w3", "W3"}, {"rss.w4", "W4"}} {
		base, ratio := "the file: "+mib(float64(cfg.size)), fmt.Sprintf("%.2f× 100 MiB", r.max(c.key)/(100<<20))
		if c.key == "rss.w1" && r.has("rss.w1.rclone.streams") {
			base = "rclone with streams (W1): " + mib(r.max("rss.w1.rclone.streams")) + " (max)"
		}
		w("| W5 | peak RSS (VmHWM) of the loader during %s | %s (max) | %s | %s | ≤ 100 MiB | %s |",
			c.what, mib(r.max(c.key)), base, ratio, verdict(r.max(c.key) <= 100<<20))
	}
	together := true
	for _, v := range r.figs["w6.together"] {
		together = together && v == 1
	}
	w("| W6 | %d concurrent cold sequential readers: peak RSS | %s (max) | — | %.2f× 128 MiB | ≤ 128 MiB | %s |",
		cfg.readers, mib(r.max("rss.w6")), r.max("rss.w6")/(128<<20), verdict(r.max("rss.w6") <= 128<<20))
	w("| W6 | every reader progressing: exact bytes each, and each had its first MiB (last at %s) before the first finished (at %s) | %s | — | — | all | %s |",
		r.fig("w6.lastfirst", func(v float64) string { return fmt.Sprintf("%.2f s", v) }),
		r.fig("w6.firstdone", func(v float64) string { return fmt.Sprintf("%.2f s", v) }),
		map[bool]string{true: "all", false: "not all"}[together], verdict(together))
	w("")
	count := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	w("W6 per reader: slowest %s, fastest %s; all %d together %s.  ",
		r.fig("w6.slow", mbs), r.fig("w6.fast", mbs), cfg.readers, r.fig("w6.total", mbs))
	w("Connections the loader opened through the proxies (which delay bytes, not TCP handshakes): W1, %s to the CDN; "+
		"W2 at offset 0, %s to the CDN and %s to the Resource API; W2 in the middle, %s and %s.",
		r.fig("w1.conns", count), r.fig("w2.start.cdn", count), r.fig("w2.start.api", count),
		r.fig("w2.mid.cdn", count), r.fig("w2.mid.api", count))
	if r.has("rss.w1.rclone.off") {
		w("rclone's peak RSS during its W1: `off` %s, with streams %s.", r.fig("rss.w1.rclone.off", mib), r.fig("rss.w1.rclone.streams", mib))
	}
	if len(r.notes) > 0 {
		w("")
		for _, n := range r.notes {
			w("- %s", n)
		}
	}
	return b.String()
}

// prefetch asks the loader to prefetch the bench's resource and polls
// /status until it is done; it returns how many distinct byte counts the
// progress showed on the way.
func (s *stack) prefetch(size int64) (int, error) {
	body := fmt.Sprintf(`{"folder":%q,"names":[%q]}`, benchFolder, benchName)
	resp, err := (&http.Client{Timeout: time.Minute}).Post("http://"+s.loaderAddr+"/prefetch", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("prefetch: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("prefetch: %s", resp.Status)
	}
	seen := map[int64]bool{}
	deadline := time.Now().Add(wanTimeout)
	for time.Now().Before(deadline) {
		var st struct {
			Prefetch struct {
				Resources []struct {
					State        string
					Error        string
					Bytes, Total int64
				}
			}
		}
		if err := getJSON("http://"+s.loaderAddr+"/status", &st); err != nil {
			return 0, err
		}
		for _, r := range st.Prefetch.Resources {
			seen[r.Bytes] = true
			switch r.State {
			case "done":
				if r.Bytes != size {
					return 0, fmt.Errorf("prefetch: done with %d bytes of %d", r.Bytes, size)
				}
				return len(seen), nil
			case "error":
				return 0, fmt.Errorf("prefetch: %s", r.Error)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("prefetch: not done in %v", wanTimeout)
}
