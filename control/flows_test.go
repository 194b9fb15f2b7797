package control_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/refapi"
	"github.com/azaion/loader/resources/testbed"
)

// TestHealthStatusLogin walks flow F1 and F6: /health, /status before and
// after a login, a refused login that leaves the loader logged out.
func TestHealthStatusLogin(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})

	if r := l.get(t, "/health"); r.code != 200 || string(r.body) != "{\"status\":\"healthy\"}\n" {
		t.Fatalf("/health: %v", r)
	}
	status := func() (bool, string) {
		t.Helper()
		r := l.get(t, "/status")
		var v struct {
			Status        string `json:"status"`
			Authenticated *bool  `json:"authenticated"`
			ModelCacheDir string `json:"modelCacheDir"`
		}
		if r.code != 200 || json.Unmarshal(r.body, &v) != nil || v.Status != "healthy" || v.Authenticated == nil {
			t.Fatalf("/status: %v", r)
		}
		return *v.Authenticated, v.ModelCacheDir
	}
	if auth, dir := status(); auth || dir != l.store.CacheDir() || dir == "" {
		t.Fatalf("/status before login: authenticated %v, modelCacheDir %q; want false, %q", auth, dir, l.store.CacheDir())
	}

	for _, c := range []struct{ email, password string }{
		{bed.Email, "wrong-password"},
		{"nobody@azaion.test", bed.Password},
		{"other@azaion.test", bed.Password}, // another user's account, this user's password
	} {
		r := l.login(t, c.email, c.password)
		if r.code != 401 || r.detail() == "" {
			t.Fatalf("login %s with a wrong password: %v, want 401 with a detail", c.email, r)
		}
		if strings.Contains(string(r.body), c.password) {
			t.Fatalf("login: the password shows in the answer: %s", r.body)
		}
	}
	if auth, _ := status(); auth {
		t.Fatal("/status: authenticated after refused logins")
	}
	// Emails are compared trimmed and lower-cased (PROTOCOL §1).
	if r := l.login(t, "  "+strings.ToUpper(bed.Email)+" ", bed.Password); r.code != 200 {
		t.Fatalf("login with an upper-case email: %v", r)
	}
	if auth, _ := status(); !auth {
		t.Fatal("/status: not authenticated after a login")
	}
	// A refused login later keeps the session that works.
	if r := l.login(t, bed.Email, "wrong-password"); r.code != 401 {
		t.Fatalf("second login with a wrong password: %v", r)
	}
	if auth, _ := status(); !auth {
		t.Fatal("/status: a refused login dropped the working session")
	}
}

// TestLoginAPIDown: a Resource API that refuses connections, is stopped or
// stalls gives a 401 within the Store's timeout.
func TestLoginAPIDown(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		bed := testbed.New(t, testbed.Options{ProxyAPI: true})
		l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
		bed.APIProxy.Close()
		start := time.Now()
		if r := l.login(t, bed.Email, bed.Password); r.code != 401 || r.detail() == "" {
			t.Fatalf("login with the API's port closed: %v, want 401", r)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("login with the API's port closed took %v", d)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		bed := testbed.New(t, testbed.Options{})
		l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
		bed.APIServer.Close()
		start := time.Now()
		if r := l.login(t, bed.Email, bed.Password); r.code != 401 || r.detail() == "" {
			t.Fatalf("login with the API stopped: %v, want 401", r)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("login with the API stopped took %v", d)
		}
	})
	t.Run("stalled", func(t *testing.T) {
		bed := testbed.New(t, testbed.Options{ProxyAPI: true})
		l := newLoader(t, bed, testbed.StoreOptions{Timeout: time.Second}, control.Config{})
		bed.APIProxy.Inject(cdntest.Fault{Mode: cdntest.Stall})
		start := time.Now()
		if r := l.login(t, bed.Email, bed.Password); r.code != 401 || r.detail() == "" {
			t.Fatalf("login with the API stalled: %v, want 401", r)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("login with the API stalled took %v with a 1s timeout", d)
		}
		bed.APIProxy.Clear()
		l.loginOK(t)
	})
}

// TestHardwareMismatch: a user bound to another device gets a 409 that says
// so, on /login and on /load.
func TestHardwareMismatch(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	here := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	elsewhere := serveStore(t, bed, storeWithHardware(t, bed, "CPU: Other CPU. GPU: none. Memory: 2048. DriveSerial: OTHER-1."), control.Config{})

	// The other device logs in first and binds the user.
	elsewhere.loginOK(t)
	r := here.login(t, bed.Email, bed.Password)
	if r.code != 409 || !strings.Contains(r.detail(), "hardware mismatch") {
		t.Fatalf("login from a second device: %v, want 409 naming the hardware mismatch", r)
	}

	// An administrator resets the binding; this device binds it, and the
	// other one, logged in before, now gets 409 on /load.
	bed.API.ResetBinding(bed.Email)
	here.loginOK(t)
	here.uploadOK(t, folder, "m.bin", content(1, 5000))
	here.loadOK(t, folder, "m.bin", 5000, sumOf(1, 5000))
	got := elsewhere.load(t, folder, "m.bin")
	if got.code != 409 || !strings.Contains(string(got.body), "hardware mismatch") {
		t.Fatalf("load from the unbound device: %d %s, want 409 naming the hardware mismatch", got.code, got.body)
	}
}

// TestTokenExpiresMidSession: when the API's clock passes the token's exp,
// the next /load logs in again by itself and works.
func TestTokenExpiresMidSession(t *testing.T) {
	var skew atomic.Int64
	bed := testbed.New(t, testbed.Options{TokenTTL: time.Hour, Now: func() time.Time {
		return time.Now().Add(time.Duration(skew.Load()))
	}})
	folder := bed.NewFolder(t)
	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	l.loginOK(t)
	l.uploadOK(t, folder, "m.bin", content(2, 100_000))
	logins := bed.API.Requests()[refapi.RouteLogin]

	skew.Store(int64(2 * time.Hour)) // the token is an hour past its exp
	l.loadOK(t, folder, "m.bin", 100_000, sumOf(2, 100_000))
	if n := bed.API.Requests()[refapi.RouteLogin]; n != logins+1 {
		t.Fatalf("logins to the API: %d after the token expired, want %d (one transparent re-login)", n, logins+1)
	}
	skew.Store(int64(4 * time.Hour))
	l.uploadOK(t, folder, "n.bin", content(3, 20_000))
	l.loadOK(t, folder, "n.bin", 20_000, sumOf(3, 20_000))
	if n := bed.API.Requests()[refapi.RouteLogin]; n != logins+2 {
		t.Fatalf("logins to the API: %d, want %d", n, logins+2)
	}
}

// TestCorruptCacheFallsBackToCDN flips bytes of the local big part: /load
// fetches the spoiled range from the CDN again and returns the right bytes.
func TestCorruptCacheFallsBackToCDN(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	l.loginOK(t)
	const size = 3 << 20
	l.uploadOK(t, folder, "m.bin", content(4, size))
	path := filepath.Join(l.store.CacheDir(), folder, "m.bin.big")
	before := bed.CDNProxy.BytesFromUpstream()
	l.loadOK(t, folder, "m.bin", size, sumOf(4, size))
	if d := bed.CDNProxy.BytesFromUpstream() - before; d > 4096 {
		t.Fatalf("a load of a resource just uploaded moved %d bytes from the CDN, want only a HEAD", d)
	}

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("the uploaded big part is not in the cache: %v", err)
	}
	for _, off := range []int64{0, 1 << 20, size - 4000} {
		if _, err := f.WriteAt([]byte("spoiled!"), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	before = bed.CDNProxy.BytesFromUpstream()
	l.loadOK(t, folder, "m.bin", size, sumOf(4, size))
	if d := bed.CDNProxy.BytesFromUpstream() - before; d < 1<<20 {
		t.Fatalf("after corrupting the cache, /load moved only %d bytes from the CDN", d)
	}
	l.loadOK(t, folder, "m.bin", size, sumOf(4, size))
}

// TestMissing: a resource never uploaded, and one whose CDN object is gone,
// are 404 with a detail.
func TestMissing(t *testing.T) {
	bed := testbed.New(t, testbed.Options{SingleBucket: true})
	folder := bed.NewFolder(t)
	up := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	up.loginOK(t)
	if got := up.load(t, folder, "never.bin"); got.code != 404 || !strings.Contains(string(got.body), "detail") {
		t.Fatalf("load of a resource never uploaded: %d %s, want 404", got.code, got.body)
	}
	up.uploadOK(t, folder, "gone.bin", content(5, 50_000))
	bucket, key := bed.Bucket, folder+"/gone.bin.big"
	if _, err := bed.MinIO.Root().DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
	down := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	down.loginOK(t)
	if got := down.load(t, folder, "gone.bin"); got.code != 404 || !strings.Contains(string(got.body), "detail") {
		t.Fatalf("load with the CDN object gone: %d %s, want 404", got.code, got.body)
	}
}

// TestNotLoggedIn: /load and /upload before a login are 401.
func TestNotLoggedIn(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	if got := l.load(t, folder, "m.bin"); got.code != 401 || !strings.Contains(string(got.body), "not logged in") {
		t.Fatalf("load before login: %d %s, want 401", got.code, got.body)
	}
	if r := l.upload(t, folder, "m.bin", content(6, 1000)); r.code != 401 || r.detail() == "" {
		t.Fatalf("upload before login: %v, want 401", r)
	}
}

// TestSecondStoreAndCacheKept: a fresh loader loads what another uploaded;
// the big part it fetched stays in its cache, so a second /load moves no
// big-part bytes from the CDN.
func TestSecondStoreAndCacheKept(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	up := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	up.loginOK(t)
	const size = 5 << 20
	up.uploadOK(t, folder, "m.bin", content(7, size))

	down := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	down.loginOK(t)
	path := filepath.Join(down.store.CacheDir(), folder, "m.bin.big")
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the fresh loader's cache holds the big part before any load")
	}
	before := bed.CDNProxy.BytesFromUpstream()
	down.loadOK(t, folder, "m.bin", size, sumOf(7, size))
	if d := bed.CDNProxy.BytesFromUpstream() - before; d < size-3072 {
		t.Fatalf("a cold load moved %d bytes from the CDN, less than the big part", d)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != bed.BigObject(t, folder, "m.bin") {
		t.Fatalf("big part in the cache after a load: %v (size %v), want %d bytes", err, fi, bed.BigObject(t, folder, "m.bin"))
	}
	before = bed.CDNProxy.BytesFromUpstream()
	down.loadOK(t, folder, "m.bin", size, sumOf(7, size))
	if d := bed.CDNProxy.BytesFromUpstream() - before; d > 4096 {
		t.Fatalf("a warm load moved %d bytes from the CDN, want only a HEAD", d)
	}
}

// TestStreamCutMidway: when the CDN stalls half-way through a cold /load,
// the client gets a cut connection, never a complete-looking body.
func TestStreamCutMidway(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	up := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	up.loginOK(t)
	const size = 8 << 20
	up.uploadOK(t, folder, "m.bin", content(8, size))

	// A range timeout short enough to end the stalled stream soon, long
	// enough for the 1 MiB ranges of the clean load below on a busy machine.
	down := newLoader(t, bed, testbed.StoreOptions{Timeout: 3 * time.Second}, control.Config{})
	down.loginOK(t)
	bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Stall, After: 2 << 20})
	start := time.Now()
	got := down.load(t, folder, "m.bin")
	if got.code != 200 || got.length != size {
		t.Fatalf("cold load: %d, Content-Length %d; want 200 with %d (headers go out before the stall)", got.code, got.length, size)
	}
	if got.readErr == nil || got.n >= size {
		t.Fatalf("a load whose CDN stalled ended cleanly with %d bytes (err %v); want a cut connection", got.n, got.readErr)
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Fatalf("the stalled load took %v to end with a 3s range timeout", d)
	}
	bed.CDNProxy.Clear()
	if r := down.get(t, "/health"); r.code != 200 {
		t.Fatalf("/health after a cut stream: %v", r)
	}
	// A load that starts while the stalled stream is still failing may join
	// it (its chunks would come from that GET) and be cut with it, once;
	// the load after starts a GET of its own and is whole.
	if r := down.load(t, folder, "m.bin"); r.readErr != nil {
		t.Logf("the first load after the fault joined the failing stream: %v", r.readErr)
	}
	down.loadOK(t, folder, "m.bin", size, sumOf(8, size))
}
