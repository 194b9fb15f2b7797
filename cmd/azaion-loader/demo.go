package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/refapi"
)

const demoUsage = `Usage: azaion-loader demo [--listen ADDR] [--mount DIR|none] [--example FILE]

Runs the whole loader on loopback with nothing outside this machine: an
in-process S3 CDN, the reference Resource API and the loader with its
control API and (as root, with /dev/fuse) its mount. It logs in, uploads
an example resource, a small real ONNX model and a generated 32 MiB file,
loads them back through the API and the mount, checks every byte, prints
where each part went and the curl lines to try, and runs until Ctrl-C.

Example:
  azaion-loader demo

Flags:
`

const (
	demoEmail    = "demo@azaion.local"
	demoPassword = "demo-password"
	demoFolder   = "models"
	demoModel    = "yolo-demo.onnx"
	demoBucket   = "models"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fset.String("listen", "127.0.0.1:8080", "`ADDR` the control API listens on (a free port is taken when it is busy)")
	mount := fset.String("mount", "", "mount point `DIR` (default: a temporary directory; none: no mount)")
	example := fset.String("example", "examples/demo/coco-classes.txt", "the example resource `FILE` to upload")
	if err := parseFlags(fset, demoUsage, stdout, args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usageError{error: fmt.Errorf("demo: unexpected argument %q", fset.Arg(0))}
	}
	exampleBytes, err := os.ReadFile(*example)
	if err != nil {
		return fmt.Errorf("demo: example resource: %w (run from the repository's top, or pass --example)", err)
	}
	dir, err := os.MkdirTemp("", "azaion-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := newLogger(stderr, "warn", "text", false)
	out := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	// The CDN: an in-process S3 server (the tests use a real MinIO).
	backend := s3mem.New()
	if err := backend.CreateBucket(demoBucket); err != nil {
		return err
	}
	s3URL, stopS3, err := serveLoopback(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	if err != nil {
		return err
	}
	defer stopS3()

	// The reference Resource API, with one user and cdn.yaml.
	ref, err := refapi.New(refapi.Config{
		Users:       []refapi.User{{ID: "1", Email: demoEmail, Password: demoPassword, Role: "user"}},
		DataDir:     filepath.Join(dir, "resource-api"),
		KeyFragment: randomBytes(32),
		Logger:      log,
	})
	if err != nil {
		return err
	}
	cdnConf := cdn.Config{Host: s3URL, Region: cdn.DefaultRegion,
		DownloaderAccessKey: "demo-reader", DownloaderAccessSecret: hex.EncodeToString(randomBytes(16)),
		UploaderAccessKey: "demo-writer", UploaderAccessSecret: hex.EncodeToString(randomBytes(16))}
	if err := ref.Put("", "cdn.yaml", cdnConf.YAML()); err != nil {
		return err
	}
	apiURL, stopAPI, err := serveLoopback(ref.Handler())
	if err != nil {
		return err
	}
	defer stopAPI()

	// The loader.
	cfg := defaults()
	cfg.APIURL = apiURL
	cfg.ResourceKey = hex.EncodeToString(randomBytes(32))
	cfg.CacheDir = filepath.Join(dir, "cache")
	cfg.Listen = *listen
	cfg.Hardware = "CPU: demo. GPU: none. Memory: 1024. DriveSerial: demo."
	cfg.Folders = []string{demoFolder}
	switch {
	case *mount == "none":
	case *mount != "":
		cfg.Mount = *mount
	case os.Geteuid() == 0 && fileExists("/dev/fuse"):
		cfg.Mount = filepath.Join(dir, "mnt")
		if err := os.Mkdir(cfg.Mount, 0o755); err != nil {
			return err
		}
	default:
		out("(no mount: the demo mounts as root with /dev/fuse; the API works without it)")
	}
	if ln, err := net.Listen("tcp", cfg.Listen); err != nil {
		cfg.Listen = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	l, err := startLoader(cfg, log)
	if err != nil {
		return err
	}
	defer l.Close()
	base := "http://" + l.addr

	out("azaion-loader demo: everything runs on loopback")
	out("  S3 CDN (in-process):     %s", s3URL)
	out("  Resource API (reference): %s   user %s / %s", apiURL, demoEmail, demoPassword)
	out("  loader control API:       %s", base)
	if err := demoPost(base+"/login", "application/json", mustJSON(map[string]string{"email": demoEmail, "password": demoPassword}), nil); err != nil {
		return fmt.Errorf("demo: login: %w", err)
	}
	out("\nPOST /login: ok (token from the Resource API, cdn.yaml decrypted, CDN client ready)")

	model := make([]byte, 32<<20)
	mrand.NewChaCha8([32]byte{'a', 'z', 'a', 'i', 'o', 'n'}).Read(model)
	for _, r := range []struct {
		name string
		data []byte
	}{{filepath.Base(*example), exampleBytes}, {demoONNXName, demoONNX()}, {demoModel, model}} {
		if err := demoRoundTrip(base, r.name, r.data, out); err != nil {
			return err
		}
		out("    small part: Resource API, %s", filepath.Join(dir, "resource-api", demoFolder, r.name+".small"))
		out("    big part:   S3 bucket %q, key %q; local cache %s", demoBucket, r.name+".big", filepath.Join(cfg.CacheDir, demoFolder, r.name+".big"))
	}
	if cfg.Mount != "" {
		if err := demoMount(cfg.Mount, map[string][]byte{filepath.Base(*example): exampleBytes, demoONNXName: demoONNX(), demoModel: model}, out); err != nil {
			return err
		}
	}
	out("\nTry it:")
	out("  curl -s %s/status", base)
	out("  curl -s -X POST %s/load/%s -H 'Content-Type: application/json' -d '{\"folder\":\"%s\"}' | sha256sum", base, demoModel, demoFolder)
	out("  curl -s -X POST %s/upload/notes.txt -F folder=%s -F file=@README.md", base, demoFolder)
	if cfg.Mount != "" {
		out("  ls -l %s/%s && sha256sum %s/%s/%s", cfg.Mount, demoFolder, cfg.Mount, demoFolder, demoModel)
		out("  python3 examples/open_model.py %s/%s/%s   # onnx: apt-get install python3-onnx", cfg.Mount, demoFolder, demoONNXName)
	}
	out("\nRunning until Ctrl-C.")
	<-ctx.Done()
	out("stopping: unmounting and shutting down")
	return nil
}

// demoRoundTrip uploads data through the control API, loads it back and
// checks the bytes.
func demoRoundTrip(base, name string, data []byte, out func(string, ...any)) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("folder", demoFolder)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	if err := demoPost(base+"/upload/"+name, mw.FormDataContentType(), body.Bytes(), nil); err != nil {
		return fmt.Errorf("demo: upload %s: %w", name, err)
	}
	var got bytes.Buffer
	if err := demoPost(base+"/load/"+name, "application/json", mustJSON(map[string]string{"filename": name, "folder": demoFolder}), &got); err != nil {
		return fmt.Errorf("demo: load %s: %w", name, err)
	}
	want, have := sha256.Sum256(data), sha256.Sum256(got.Bytes())
	out("\nPOST /upload/%s then POST /load/%s: %d bytes", name, name, len(data))
	out("    sha256 original:  %x", want)
	out("    sha256 via /load: %x", have)
	if want != have {
		return fmt.Errorf("demo: %s came back different", name)
	}
	return nil
}

func demoMount(dir string, files map[string][]byte, out func(string, ...any)) error {
	out("\nThe mount, %s:", dir)
	entries, err := os.ReadDir(filepath.Join(dir, demoFolder))
	if err != nil {
		return fmt.Errorf("demo: list the mount: %w", err)
	}
	for _, e := range entries {
		info, _ := e.Info()
		out("    %s  %10d  %s/%s", info.Mode(), info.Size(), demoFolder, e.Name())
	}
	for name, data := range files {
		start := time.Now()
		got, err := os.ReadFile(filepath.Join(dir, demoFolder, name))
		if err != nil {
			return fmt.Errorf("demo: read %s through the mount: %w", name, err)
		}
		want, have := sha256.Sum256(data), sha256.Sum256(got)
		out("    %s: sha256 original %x", name, want)
		out("    %s: sha256 mount    %x  (%s)", name, have, time.Since(start).Round(time.Millisecond))
		if want != have {
			return fmt.Errorf("demo: %s reads different through the mount", name)
		}
	}
	return nil
}

func demoPost(url, contentType string, body []byte, out io.Writer) error {
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		out = io.Discard
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

// serveLoopback serves h on a free loopback port.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
