package resources_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/cdn/cdntest"
	"github.com/azaion/loader/resources/testbed"
)

func TestMain(m *testing.M) { cdntest.Main(m) }

// TestStoreRoundTrip uploads through one Store and opens through a fresh
// one (cold cache), in both CDN layouts, checking the split of §2 as stored.
func TestStoreRoundTrip(t *testing.T) {
	for _, single := range []bool{false, true} {
		bed := testbed.New(t, testbed.Options{SingleBucket: single})
		folder := bed.NewFolder(t)
		up := bed.LoggedIn(t, testbed.StoreOptions{})
		down := bed.LoggedIn(t, testbed.StoreOptions{})
		ctx := context.Background()
		for _, size := range []int{0, 1, 15, 16, 17, 10207, 10208, 10224, 5 << 20} {
			plain := make([]byte, size)
			rand.Read(plain)
			name := "r.bin"
			n, err := up.Upload(ctx, folder, name, bytes.NewReader(plain))
			if err != nil || n != int64(size) {
				t.Fatalf("upload %d: n=%d err=%v", size, n, err)
			}
			clen := resources.CipherLen(int64(size))
			small := bed.SmallPart(t, folder, name)
			if int64(len(small)) != resources.SmallLen(clen) || bed.BigObject(t, folder, name) != clen-int64(len(small)) {
				t.Fatalf("size %d: split %d+%d, want %d+%d", size, len(small), bed.BigObject(t, folder, name), resources.SmallLen(clen), clen-resources.SmallLen(clen))
			}
			res, err := down.Open(ctx, folder, name)
			if err != nil {
				t.Fatalf("open %d: %v", size, err)
			}
			got, err := io.ReadAll(io.NewSectionReader(res.At(ctx), 0, res.Size()))
			if err != nil || sha256.Sum256(got) != sha256.Sum256(plain) {
				t.Fatalf("size %d (single bucket %v): bytes differ (err %v)", size, single, err)
			}
		}
		if _, err := down.Open(ctx, folder, "missing.bin"); !errors.Is(err, resources.ErrNotFound) {
			t.Fatalf("missing: %v, want ErrNotFound", err)
		}
	}
}

// TestOpenRefusesNonBucketFolder: in the bucket-per-folder layout a folder
// that cannot be a bucket is refused before the Resource API or the CDN is
// asked (PROTOCOL §4).
func TestOpenRefusesNonBucketFolder(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true, ProxyAPI: true})
	s := bed.LoggedIn(t, testbed.StoreOptions{})
	cdnBefore, apiBefore := bed.CDNProxy.BytesFromUpstream(), bed.APIProxy.BytesFromUpstream()
	for _, folder := range []string{"Models", "ab", "under_score"} {
		if _, err := s.Open(context.Background(), folder, "m.onnx"); !errors.Is(err, resources.ErrBadName) {
			t.Fatalf("folder %q: %v, want ErrBadName", folder, err)
		}
	}
	if bed.CDNProxy.BytesFromUpstream() != cdnBefore || bed.APIProxy.BytesFromUpstream() != apiBefore {
		t.Fatalf("a refused folder reached the CDN or the API")
	}
}

// TestOpenCachedWhileCDNStalls: a version in the local cache opens and reads
// within the caller's deadline while the CDN answers nothing, since the CDN
// is given only half the time before the cached version is used.
func TestOpenCachedWhileCDNStalls(t *testing.T) {
	bed := testbed.New(t, testbed.Options{ProxyCDN: true})
	folder := bed.NewFolder(t)
	s := bed.LoggedIn(t, testbed.StoreOptions{})
	ctx := context.Background()
	plain := uploadRandom(t, s, folder, "m.bin", 3<<20+123)
	bed.CDNProxy.Inject(cdntest.Fault{Mode: cdntest.Stall})
	octx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	res, err := s.Open(octx, folder, "m.bin")
	if err != nil {
		t.Fatalf("open of a cached version while the CDN stalls: %v", err)
	}
	got, err := io.ReadAll(io.NewSectionReader(res.At(octx), 0, res.Size()))
	if err != nil || sha256.Sum256(got) != sha256.Sum256(plain) {
		t.Fatalf("read of the cached version: %d bytes, %v", len(got), err)
	}
}

// uploadRandom uploads size random bytes as folder/name through s and
// returns them.
func uploadRandom(t *testing.T, s *resources.Store, folder, name string, size int) []byte {
	t.Helper()
	plain := make([]byte, size)
	rand.Read(plain)
	if _, err := s.Upload(context.Background(), folder, name, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	return plain
}
