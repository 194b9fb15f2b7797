// Package cdntest runs a real MinIO server for tests, with downloader and
// uploader users like a deployment's, and a counting TCP proxy that can
// stall, reset or cut responses. Other packages' tests import it.
package cdntest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources/cdn"
)

// Keys is one S3 user's access key and secret.
type Keys struct{ AccessKey, SecretKey string }

// MinIO is a running MinIO server on 127.0.0.1.
type MinIO struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root user's.
	AccessKey, SecretKey string
	// Downloader may read and list every bucket; Uploader may also write.
	Downloader, Uploader Keys

	root    *s3.Client
	cmd     *exec.Cmd
	exited  chan struct{}
	out     *syncBuffer
	rmDir   string // removed by Stop when the server owns it
	stopped sync.Once
}

// Fixed credentials: the server only ever listens on loopback.
const (
	rootUser     = "azaion-root"
	rootPassword = "azaion-root-secret"
	region       = "us-east-1"
	readyTimeout = 30 * time.Second
	callTimeout  = 15 * time.Second
)

// Start runs a MinIO server for t and stops it when t ends. The binary is
// $MINIO_BIN, else minio on PATH, else $(go env GOPATH)/bin/minio; when it
// is missing the test fails.
func Start(t testing.TB) *MinIO {
	t.Helper()
	m, err := start(t.TempDir(), "")
	if err != nil {
		t.Fatalf("cdntest: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Launch runs a MinIO server with its data under dir, for callers without
// a testing.TB (the benchmark, tools): bin "" finds the binary as Start
// does. The caller stops it with Stop; dir stays.
func Launch(bin, dir string) (*MinIO, error) {
	if bin != "" {
		return startBinary(bin, dir, "")
	}
	return start(dir, "")
}

var shared struct {
	inMain bool
	once   sync.Once
	m      *MinIO
	err    error
}

// Main runs a test package with one MinIO server for all its tests, started
// by the first Shared call and stopped after the last test:
//
//	func TestMain(m *testing.M) { cdntest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with more to do after the tests: it returns
// the exit code instead of exiting.
func Run(m *testing.M) int {
	shared.inMain = true
	code := m.Run()
	if shared.m != nil {
		shared.m.Stop()
	}
	return code
}

// Shared returns the package's MinIO server under Main (each test should use
// buckets of its own, see NewBucket), or a server of t's own without Main.
func Shared(t testing.TB) *MinIO {
	t.Helper()
	if !shared.inMain {
		return Start(t)
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "cdntest-minio-")
		if err != nil {
			shared.err = err
			return
		}
		shared.m, shared.err = start(dir, dir)
	})
	if shared.err != nil {
		t.Fatalf("cdntest: %v", shared.err)
	}
	return shared.m
}

func start(dir, owned string) (*MinIO, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	return startBinary(bin, dir, owned)
}

func startBinary(bin, dir, owned string) (*MinIO, error) {
	var last error
	for try := 0; try < 3; try++ { // a free port can be taken before minio binds it
		m, err := launch(bin, dir)
		if err == nil {
			m.rmDir = owned
			if err := m.addUsers(); err != nil {
				m.Stop()
				return nil, err
			}
			return m, nil
		}
		last = err
	}
	if owned != "" {
		os.RemoveAll(owned)
	}
	return nil, last
}

func findBinary() (string, error) {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output()
		if err == nil {
			gopath = strings.TrimSpace(strings.SplitN(string(out), string(filepath.ListSeparator), 2)[0])
		}
	}
	if gopath != "" {
		p := filepath.Join(gopath, "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("minio binary not found: set MINIO_BIN, put minio on PATH, or " +
		"go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c")
}

func launch(bin, dir string) (*MinIO, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data, home := filepath.Join(dir, "data"), filepath.Join(dir, "home")
	for _, d := range []string{data, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr,
		"--certs-dir", filepath.Join(home, "certs"), data)
	cmd.Env = []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"MINIO_ROOT_USER=" + rootUser,
		"MINIO_ROOT_PASSWORD=" + rootPassword,
		"MINIO_BROWSER=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_UPDATE=off",
		"GOMAXPROCS=2",
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	m := &MinIO{
		Endpoint:  "http://" + addr,
		AccessKey: rootUser, SecretKey: rootPassword,
		cmd: cmd, exited: make(chan struct{}), out: out,
	}
	go func() { cmd.Wait(); close(m.exited) }()
	if err := m.waitReady(); err != nil {
		m.Stop()
		return nil, fmt.Errorf("%w; minio said: %s", err, out.String())
	}
	m.root = s3Client(m.Endpoint, Keys{rootUser, rootPassword})
	return m, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (m *MinIO) waitReady() error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return errors.New("minio exited before it was ready")
		default:
		}
		if resp, err := hc.Get(m.Endpoint + "/minio/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio not ready after %v", readyTimeout)
}

// Stop kills the server and waits (bounded) for it to go.
func (m *MinIO) Stop() {
	m.stopped.Do(func() {
		m.cmd.Process.Kill()
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
		}
		if m.rmDir != "" {
			os.RemoveAll(m.rmDir)
		}
	})
}

// Config is a cdn.Config for this server with the downloader and uploader
// users; bucket "" is the bucket-per-folder layout.
func (m *MinIO) Config(bucket string) cdn.Config {
	return cdn.Config{
		Host: m.Endpoint, Region: region, Bucket: bucket,
		DownloaderAccessKey: m.Downloader.AccessKey, DownloaderAccessSecret: m.Downloader.SecretKey,
		UploaderAccessKey: m.Uploader.AccessKey, UploaderAccessSecret: m.Uploader.SecretKey,
	}
}

// Root is an S3 client with the root user's keys, for setting up tests.
func (m *MinIO) Root() *s3.Client { return m.root }

// MakeBucket creates bucket name.
func (m *MinIO) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := m.root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("cdntest: make bucket %s: %v", name, err)
	}
}

var bucketSeq atomic.Int64

// NewBucket creates a bucket with a fresh name and returns the name.
func (m *MinIO) NewBucket(t testing.TB) string {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	name := fmt.Sprintf("t%d-%s", bucketSeq.Add(1), hex.EncodeToString(r[:]))
	m.MakeBucket(t, name)
	return name
}

// PutObject stores data at bucket/key with the root user's keys.
func (m *MinIO) PutObject(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := m.root.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		t.Fatalf("cdntest: put %s/%s: %v", bucket, key, err)
	}
}

// s3Client is a plain path-style client for the harness's own calls.
func s3Client(endpoint string, k Keys) *s3.Client {
	return s3.New(s3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(k.AccessKey, k.SecretKey, ""),
		HTTPClient:                 &http.Client{Timeout: callTimeout, Transport: &http.Transport{}},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// syncBuffer collects the server's output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
