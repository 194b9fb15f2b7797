package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/refapi"
)

// The stack's fixed names and loopback-only credentials.
const (
	benchEmail    = "bench@azaion.local"
	benchPassword = "bench-password"
	benchFolder   = "models"
	benchName     = "model.bin"
	region        = "us-east-1"
)

// stack is MinIO, the reference Resource API (in this process) and the
// loader (a child process with its mount).
type stack struct {
	work        string
	loaderBin   string
	minioURL    string
	minio       *cdntest.MinIO
	s3          *s3.Client
	apiURL      string
	apiSrv      *http.Server
	apiData     string
	ref         *refapi.Server
	resourceKey string

	loader     *exec.Cmd
	loaderDone chan struct{}
	loaderAddr string
	mount      string
	cacheDir   string
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startStack starts MinIO and the Resource API; the loader starts apart.
func startStack(work, minioBin, loaderBin string) (*stack, error) {
	s := &stack{work: work, loaderBin: loaderBin, resourceKey: randHex(32),
		mount: filepath.Join(work, "mnt"), cacheDir: filepath.Join(work, "cache")}
	if err := os.MkdirAll(s.mount, 0o755); err != nil {
		return nil, err
	}
	m, err := cdntest.Launch(minioBin, filepath.Join(work, "minio"))
	if err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	s.minio, s.minioURL, s.s3 = m, m.Endpoint, m.Root()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, b := range []string{benchFolder, "rclone"} {
		if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			s.Close()
			return nil, fmt.Errorf("create bucket %s: %w", b, err)
		}
	}

	s.apiData = filepath.Join(work, "resource-api")
	ref, err := refapi.New(refapi.Config{
		Users:   []refapi.User{{ID: "1", Email: benchEmail, Password: benchPassword, Role: "operator"}},
		DataDir: s.apiData, KeyFragment: []byte(randHex(16)), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.ref = ref
	// The benchmark's own MinIO on loopback: its root keys serve as both
	// the downloader's and the uploader's.
	conf := m.Config("")
	if err := ref.Put("", "cdn.yaml", conf.YAML()); err != nil {
		s.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	s.apiURL = "http://" + ln.Addr().String()
	s.apiSrv = &http.Server{Handler: ref.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.apiSrv.Serve(ln)
	return s, nil
}

func waitHTTP(url string, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v", url, limit)
}

// startLoader runs `azaion-loader serve` with its mount, logging in at
// start, and waits until it is logged in. fresh empties the cache first.
func (s *stack) startLoader(fresh bool) error {
	if fresh {
		if err := os.RemoveAll(s.cacheDir); err != nil {
			return err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	s.loaderAddr = addr
	cfg := fmt.Sprintf("api_url: %s\nresource_key: %q\ncache_dir: %s\nlisten: %s\nmount: %s\nfolders: [%s]\n"+
		"hardware: \"CPU: bench. GPU: none. Memory: 1024. DriveSerial: bench.\"\nemail: %s\npassword: %s\n"+
		"max_upload_bytes: 68719476736\nlog_level: warn\nlog_format: json\n",
		s.apiURL, s.resourceKey, s.cacheDir, addr, s.mount, benchFolder, benchEmail, benchPassword)
	path := filepath.Join(s.work, "loader.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	s.loader = exec.Command(s.loaderBin, "serve", "--config", path)
	s.loader.Env = append(os.Environ(), "AZAION_CONFIG=")
	logf, _ := os.OpenFile(filepath.Join(s.work, "loader.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	s.loader.Stdout, s.loader.Stderr = logf, logf
	s.loader.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.loader.Start(); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	s.loaderDone = make(chan struct{})
	go func() { s.loader.Wait(); close(s.loaderDone) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st struct{ Authenticated bool }
		if err := getJSON("http://"+addr+"/status", &st); err == nil && st.Authenticated {
			return nil
		}
		select {
		case <-s.loaderDone:
			return fmt.Errorf("loader exited at start; see %s", filepath.Join(s.work, "loader.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("loader not logged in after 30s")
}

// stopLoader stops the loader with SIGTERM (it unmounts) and waits.
func (s *stack) stopLoader() {
	if s.loader == nil {
		return
	}
	s.loader.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.loaderDone:
	case <-time.After(20 * time.Second):
		s.loader.Process.Kill()
		<-s.loaderDone
	}
	s.loader = nil
	syscall.Unmount(s.mount, syscall.MNT_DETACH) // in case it could not
}

func (s *stack) restartLoader(fresh bool) error {
	s.stopLoader()
	return s.startLoader(fresh)
}

func (s *stack) loaderPID() int { return s.loader.Process.Pid }

// Close stops everything this stack started.
func (s *stack) Close() {
	s.stopLoader()
	if s.apiSrv != nil {
		s.apiSrv.Close()
	}
	if s.minio != nil {
		s.minio.Stop()
	}
}

func getJSON(url string, v any) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// upload sends the file through POST /upload as a streamed multipart body.
func (s *stack) upload(path string) error { return s.uploadAs(path, benchName) }

// uploadAs uploads the file as name in the bench folder.
func (s *stack) uploadAs(path, name string) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		f, err := os.Open(path)
		if err == nil {
			defer f.Close()
			mw.WriteField("folder", benchFolder)
			var fw io.Writer
			if fw, err = mw.CreateFormFile("file", name); err == nil {
				_, err = io.CopyBuffer(fw, f, make([]byte, 1<<20))
			}
			if err == nil {
				err = mw.Close()
			}
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.loaderAddr+"/upload/"+name, pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("upload: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// load copies POST /load's body to w and returns its length.
func (s *stack) load(w io.Writer) (int64, error) {
	body := fmt.Sprintf(`{"folder":%q,"filename":%q}`, benchFolder, benchName)
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Post("http://"+s.loaderAddr+"/load/"+benchName, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("load: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("load: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return io.CopyBuffer(w, resp.Body, make([]byte, 1<<20))
}

// mountPath is the resource's path under the loader's mount.
func (s *stack) mountPath() string { return filepath.Join(s.mount, benchFolder, benchName) }
