// Package testbed sets up the real parts that full-stack tests run
// against: a MinIO server as the CDN, the reference Resource API over
// loopback HTTP with one user and a cdn.yaml that points at MinIO, and
// Stores wired to both. Tests of resources, control, fs and cmd share it.
package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/api"
	"github.com/azaion/loader/resources/cache"
	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/refapi"
)

// Options choose the bed's layout.
type Options struct {
	// SingleBucket: cdn.yaml names one bucket, and big parts are
	// <folder>/<name>.big in it; otherwise one bucket per folder.
	SingleBucket bool
	// TokenTTL is the Resource API's token lifetime (default 1h).
	TokenTTL time.Duration
	// ProxyCDN and ProxyAPI put a counting, fault-injecting proxy between
	// the loader and MinIO, and between the loader and the Resource API.
	ProxyCDN, ProxyAPI bool
	// Now is the Resource API's clock.
	Now func() time.Time
}

// Bed is the running set of parts.
type Bed struct {
	MinIO     *cdntest.MinIO
	API       *refapi.Server
	APIServer *httptest.Server
	// APIURL is what a loader is given: the proxy when ProxyAPI is set.
	APIURL             string
	CDNProxy, APIProxy *cdntest.Proxy
	// Bucket is the one bucket of the SingleBucket layout.
	Bucket string
	CDN    cdn.Config

	Email, Password, Hardware string
	// Viewer is a user whose uploads the Resource API refuses (403): only
	// the "operator" role may upload.
	ViewerEmail, ViewerPassword string
	ResourceKey                 string
	DataDir                     string // the Resource API's stored files
}

// New starts the bed for t; it all stops when t ends. MinIO is the test
// package's shared one under cdntest.Main.
func New(t testing.TB, opt Options) *Bed {
	t.Helper()
	b := &Bed{
		MinIO:          cdntest.Shared(t),
		Email:          "pilot@azaion.test",
		Password:       "pilot-" + randHex(8),
		Hardware:       "CPU: Test CPU. GPU: none. Memory: 4096. DriveSerial: TEST-0001.",
		ResourceKey:    "resource-key-" + randHex(16),
		ViewerEmail:    "viewer@azaion.test",
		ViewerPassword: "viewer-" + randHex(8),
		DataDir:        t.TempDir(),
	}
	if opt.SingleBucket {
		b.Bucket = b.MinIO.NewBucket(t)
	}
	b.CDN = b.MinIO.Config(b.Bucket)
	if opt.ProxyCDN {
		b.CDNProxy = cdntest.NewProxy(t, b.MinIO.Endpoint)
		b.CDN.Host = b.CDNProxy.URL()
	}
	ref, err := refapi.New(refapi.Config{
		Users: []refapi.User{
			{ID: "7", Email: b.Email, Password: b.Password, Role: "operator"},
			{ID: "8", Email: "other@azaion.test", Password: "other-password", Role: "operator"},
			{ID: "9", Email: b.ViewerEmail, Password: b.ViewerPassword, Role: "viewer"},
		},
		UploadRoles: []string{"operator"},
		DataDir:     b.DataDir,
		TokenTTL:    opt.TokenTTL,
		KeyFragment: []byte("fragment-" + randHex(16)),
		Now:         opt.Now,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("testbed: refapi: %v", err)
	}
	if err := ref.Put("", "cdn.yaml", b.CDN.YAML()); err != nil {
		t.Fatalf("testbed: cdn.yaml: %v", err)
	}
	b.API = ref
	b.APIServer = httptest.NewServer(ref.Handler())
	t.Cleanup(b.APIServer.Close)
	b.APIURL = b.APIServer.URL
	if opt.ProxyAPI {
		b.APIProxy = cdntest.NewProxy(t, b.APIServer.URL)
		b.APIURL = b.APIProxy.URL()
	}
	return b
}

// NewFolder returns a fresh folder name; in the bucket-per-folder layout
// its bucket is created.
func (b *Bed) NewFolder(t testing.TB) string {
	t.Helper()
	if b.Bucket != "" {
		return "f" + randHex(6)
	}
	return b.MinIO.NewBucket(t)
}

// StoreOptions tune a Store of the bed.
type StoreOptions struct {
	CacheDir string        // default: a fresh t.TempDir()
	Timeout  time.Duration // API calls and CDN ranges; default 10 s
	// RangeTimeout is how long a CDN GET may send nothing before it
	// resumes; default Timeout.
	RangeTimeout time.Duration
	// Streams is the cache's Options.Streams; default its own.
	Streams int
	Logger  *slog.Logger
	Folders []string
	// APIHTTP and CDNHTTP carry the Store's requests to the Resource API
	// and the CDN (to count them); nil: the clients' defaults.
	APIHTTP, CDNHTTP *http.Client
}

// Store is a new Store on the bed, not logged in, with its own cache.
func (b *Bed) Store(t testing.TB, o StoreOptions) *resources.Store {
	t.Helper()
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(t.TempDir(), "cache")
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.RangeTimeout == 0 {
		o.RangeTimeout = o.Timeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := cache.Open(o.CacheDir, cache.Options{Logger: o.Logger, FetchTimeout: o.Timeout, Streams: o.Streams})
	if err != nil {
		t.Fatalf("testbed: cache: %v", err)
	}
	client, err := api.New(b.APIURL, api.Options{Timeout: o.Timeout, Logger: o.Logger, HTTPClient: o.APIHTTP})
	if err != nil {
		t.Fatalf("testbed: api: %v", err)
	}
	s := resources.NewStore(resources.StoreConfig{
		API: client, Cache: c, ResourceKey: resources.Secret(b.ResourceKey), Hardware: b.Hardware,
		Folders: o.Folders, CDN: cdn.Options{RangeTimeout: o.RangeTimeout, CallTimeout: o.Timeout, HTTPClient: o.CDNHTTP}, Logger: o.Logger,
	})
	t.Cleanup(func() { s.Close() })
	return s
}

// LoggedIn is Store, logged in as the bed's user.
func (b *Bed) LoggedIn(t testing.TB, o StoreOptions) *resources.Store {
	t.Helper()
	s := b.Store(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Login(ctx, b.Email, b.Password); err != nil {
		t.Fatalf("testbed: login: %v", err)
	}
	return s
}

// BigObject returns the size of a big part as the CDN holds it.
func (b *Bed) BigObject(t testing.TB, folder, name string) int64 {
	t.Helper()
	bucket, key := folder, name+".big"
	if b.Bucket != "" {
		bucket, key = b.Bucket, folder+"/"+name+".big"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := b.MinIO.Root().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("testbed: head %s/%s: %v", bucket, key, err)
	}
	return *out.ContentLength
}

// SmallPart returns a small part as the Resource API stores it.
func (b *Bed) SmallPart(t testing.TB, folder, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.DataDir, folder, name+".small"))
	if err != nil {
		t.Fatalf("testbed: small part %s/%s: %v", folder, name, err)
	}
	return data
}

func randHex(n int) string {
	p := make([]byte, n)
	rand.Read(p)
	return hex.EncodeToString(p)
}
