package control_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/testbed"
)

// BenchmarkThroughput is P7 in-process: /upload and /load of one resource
// over MinIO and the reference Resource API, against Go's one-core CBC and
// against what MinIO takes and gives with nothing of the loader's in the
// way (a multipart upload of as many bytes in 8 MiB parts, two at a time,
// signed and unsigned, and one GET to nowhere), all in the same run so that
// their ratios mean something on a shared machine. THROUGHPUT_MB sets the
// size (default 256). Rates are in MB/s. Run it alone:
//
//	go test -run '^$' -bench Throughput -benchtime=1x -cpuprofile cpu.prof ./control/
func BenchmarkThroughput(b *testing.B) {
	size := int64(256) << 20
	if s, err := strconv.Atoi(os.Getenv("THROUGHPUT_MB")); err == nil && s > 0 {
		size = int64(s) << 20
	}
	bed := testbed.New(b, testbed.Options{})
	s := bed.LoggedIn(b, testbed.StoreOptions{Timeout: time.Minute})
	srv := httptest.NewServer(control.NewHandler(control.Config{Store: s}))
	b.Cleanup(srv.Close)
	folder := bed.NewFolder(b)
	mbs := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }
	only := os.Getenv("THROUGHPUT_ONLY") // "upload" or "load": profile one side

	for b.Loop() {
		enc, dec := goCBCRates(size)
		b.ReportMetric(enc, "go-enc-MB/s")
		b.ReportMetric(dec, "go-dec-MB/s")

		stop := profile(b, "upload")
		cpu := cpuNow()
		start := time.Now()
		if err := postUpload(srv.URL, folder, "model.bin", content(7, size)); err != nil {
			b.Fatal(err)
		}
		up := mbs(time.Since(start))
		stop()
		cpu.report(b, "upload", size)
		b.ReportMetric(up, "upload-MB/s")
		b.ReportMetric(up/enc, "upload/go-enc")
		if only == "upload" {
			continue
		}

		stop = profile(b, "load")
		cpu = cpuNow()
		start = time.Now()
		n, err := postLoad(srv.URL, folder, "model.bin")
		if err != nil || n != size {
			b.Fatalf("load: %d bytes, %v", n, err)
		}
		load := mbs(time.Since(start))
		stop()
		cpu.report(b, "load", size)
		b.ReportMetric(load, "load-MB/s")
		b.ReportMetric(load/dec, "load/go-dec")
		if only == "load" {
			continue
		}

		signed, unsigned := plainMultipart(b, bed, folder, size)
		b.ReportMetric(signed, "s3put-signed-MB/s")
		b.ReportMetric(unsigned, "s3put-unsigned-MB/s")
		b.ReportMetric(plainGet(b, bed, folder, "model.bin", size), "s3get-MB/s")
	}
}

// profile writes a CPU profile of one phase to $THROUGHPUT_PROF/phase.prof
// when THROUGHPUT_PROF is set (not with -cpuprofile, which holds the
// profiler); the returned func stops it.
func profile(b *testing.B, phase string) func() {
	dir := os.Getenv("THROUGHPUT_PROF")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, phase+".prof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// goCBCRates is Go's AES-256-CBC alone over size bytes in 64 MiB pieces,
// as cmd/azaion-bench measures it, in MB/s.
func goCBCRates(size int64) (enc, dec float64) {
	block, _ := aes.NewCipher(make([]byte, 32))
	buf := make([]byte, min(size, 64<<20))
	iv := make([]byte, 16)
	start := time.Now()
	e := cipher.NewCBCEncrypter(block, iv)
	for done := int64(0); done < size; done += int64(len(buf)) {
		e.CryptBlocks(buf, buf)
	}
	enc = float64(size) / time.Since(start).Seconds() / 1e6
	start = time.Now()
	d := cipher.NewCBCDecrypter(block, iv)
	for done := int64(0); done < size; done += int64(len(buf)) {
		d.CryptBlocks(buf, buf)
	}
	return enc, float64(size) / time.Since(start).Seconds() / 1e6
}

// postUpload streams content to /upload as cmd/azaion-bench does.
func postUpload(url, folder, name string, content io.Reader) error {
	resp, err := client.Do(uploadRequest(url, folder, name, content))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("upload: %d %s", resp.StatusCode, body)
	}
	return nil
}

// postLoad reads /load's body to nowhere and returns its length.
func postLoad(url, folder, name string) (int64, error) {
	body, _ := json.Marshal(map[string]string{"filename": name, "folder": folder})
	resp, err := client.Post(url+"/load/"+name, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("load: %d", resp.StatusCode)
	}
	return io.CopyBuffer(io.Discard, resp.Body, make([]byte, 1<<20))
}

func uploaderS3(bed *testbed.Bed) *s3.Client {
	return s3.New(s3.Options{
		Region: bed.CDN.Region, BaseEndpoint: aws.String(bed.CDN.Host), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(bed.CDN.UploaderAccessKey, bed.CDN.UploaderAccessSecret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// plainMultipart uploads size bytes of ready ciphertext-like data in 8 MiB
// parts, two at a time, first signed (the SDK's SHA-256 of each part over
// plain http), then with UNSIGNED-PAYLOAD, and returns both rates in MB/s.
func plainMultipart(b *testing.B, bed *testbed.Bed, folder string, size int64) (signed, unsigned float64) {
	c := uploaderS3(bed)
	part := make([]byte, 8<<20)
	content(9, int64(len(part))).Read(part)
	run := func(key string, opts ...func(*s3.Options)) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &folder, Key: &key})
		if err != nil {
			b.Fatal(err)
		}
		n := int32((size + int64(len(part)) - 1) / int64(len(part)))
		parts := make([]types.CompletedPart, n)
		errs := make(chan error, n)
		slots := make(chan struct{}, 2)
		for i := range n {
			slots <- struct{}{}
			go func() {
				defer func() { <-slots }()
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &folder, Key: &key, UploadId: cr.UploadId,
					PartNumber: aws.Int32(i + 1), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))}, opts...)
				if err == nil {
					parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(i + 1)}
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &folder, Key: &key, UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			b.Fatal(err)
		}
		return float64(int64(n)*int64(len(part))) / time.Since(start).Seconds() / 1e6
	}
	cpu := cpuNow()
	signed = run("plain-signed.big")
	cpu.report(b, "s3put-signed", size)
	cpu = cpuNow()
	unsigned = run("plain-unsigned.big", func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
	cpu.report(b, "s3put-unsigned", size)
	return signed, unsigned
}

// plainGet reads the big part of name with one GET to nowhere, in MB/s.
func plainGet(b *testing.B, bed *testbed.Bed, folder, name string, size int64) float64 {
	c := uploaderS3(bed)
	key := name + ".big"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cpu := cpuNow()
	defer cpu.report(b, "s3get", size)
	start := time.Now()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &folder, Key: &key})
	if err != nil {
		b.Fatal(err)
	}
	defer out.Body.Close()
	if _, err := io.CopyBuffer(io.Discard, out.Body, make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	return float64(size) / time.Since(start).Seconds() / 1e6
}

// cpuMark is the CPU time used so far by this process (the loader and the
// test's clients) and by its MinIO child: on a machine shared with others,
// CPU seconds per GB vary far less than rates do.
type cpuMark struct{ self, minio time.Duration }

func cpuNow() cpuMark {
	// Reset VmHWM too (root only), so that report can give the phase's peak.
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuMark{self, minioCPU()}
}

// report adds the CPU seconds per GB since m, of this process and of MinIO.
func (m cpuMark) report(b *testing.B, what string, size int64) {
	now := cpuNow()
	gb := float64(size) / 1e9
	b.ReportMetric((now.self-m.self).Seconds()/gb, what+"-cpu-s/GB")
	b.ReportMetric((now.minio-m.minio).Seconds()/gb, what+"-minio-cpu-s/GB")
	if hwm := peakRSS(); hwm > 0 {
		b.ReportMetric(float64(hwm)/(1<<20), what+"-peak-RSS-MiB")
	}
}

// peakRSS is this process's VmHWM in bytes (the loader and the test's
// clients together; run with GOMEMLIMIT=80MiB to match serve), 0 if unknown.
func peakRSS() int64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// minioCPU is the user and system time of this process's minio children,
// from /proc (in clock ticks of 10 ms).
func minioCPU() time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, d := range dirs {
		raw, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(minio") {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) < 13 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}
