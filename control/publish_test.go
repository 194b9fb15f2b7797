package control_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources/refapi"
	"github.com/azaion/loader/resources/testbed"
)

// Tests of PROTOCOL §4's upload order and binding: an upload that fails or
// is refused leaves the published version whole for every reader, and a
// small part is never merged with another version's big part.

// stores is what the CDN and the Resource API hold for a folder: every
// object key with its ETag, and every stored file with its SHA-256.
type stores struct {
	cdn map[string]string
	api map[string][32]byte
}

func storesNow(t *testing.T, bed *testbed.Bed, folder string) stores {
	t.Helper()
	s := stores{cdn: map[string]string{}, api: map[string][32]byte{}}
	bucket, prefix := folder, ""
	if bed.Bucket != "" {
		bucket, prefix = bed.Bucket, folder+"/"
	}
	out, err := bed.MinIO.Root().ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatalf("list %s: %v", bucket, err)
	}
	for _, o := range out.Contents {
		s.cdn[aws.ToString(o.Key)] = aws.ToString(o.ETag)
	}
	files, err := os.ReadDir(filepath.Join(bed.DataDir, folder))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(bed.DataDir, folder, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s.api[f.Name()] = sha256.Sum256(b)
	}
	return s
}

// sameStores fails t unless the CDN and the API hold what they held.
func sameStores(t *testing.T, what string, got, want stores) {
	t.Helper()
	var gk, wk []string
	for k, v := range got.cdn {
		gk = append(gk, k+" "+v)
	}
	for k, v := range want.cdn {
		wk = append(wk, k+" "+v)
	}
	slices.Sort(gk)
	slices.Sort(wk)
	if !slices.Equal(gk, wk) {
		t.Fatalf("%s: the CDN holds %q, want %q as before", what, gk, wk)
	}
	if len(got.api) != len(want.api) {
		t.Fatalf("%s: the Resource API holds %d files, want %d as before", what, len(got.api), len(want.api))
	}
	for k, v := range want.api {
		if got.api[k] != v {
			t.Fatalf("%s: the Resource API's %s changed", what, k)
		}
	}
}

// publishBed is a bed with an operator's loader that has uploaded v1 of
// folder/name, size bytes of content(1, size).
func publishBed(t *testing.T, opt testbed.Options, name string, size int64) (*testbed.Bed, *loader, string) {
	t.Helper()
	bed := testbed.New(t, opt)
	folder := bed.NewFolder(t)
	a := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	a.loginOK(t)
	a.uploadOK(t, folder, name, content(1, size))
	a.loadOK(t, folder, name, size, sumOf(1, size))
	return bed, a, folder
}

// fresh is a new loader of bed, logged in, with a cache of its own: what
// it loads comes from the CDN and the Resource API as they are.
func fresh(t *testing.T, bed *testbed.Bed) *loader {
	t.Helper()
	l := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	l.loginOK(t)
	return l
}

// TestRefusedUploadLeavesTheVersion: a user whose uploads the Resource API
// refuses gets 403, and every reader still gets v1 whole: the new big part
// was only staged, and its staged object is gone (issue 11, case 1).
func TestRefusedUploadLeavesTheVersion(t *testing.T) {
	const size = 2<<20 + 123
	bed, a, folder := publishBed(t, testbed.Options{}, "model.bin", size)
	before := storesNow(t, bed, folder)

	viewer := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	if r := viewer.login(t, bed.ViewerEmail, bed.ViewerPassword); r.code != 200 {
		t.Fatalf("viewer login: %v", r)
	}
	if r := viewer.upload(t, folder, "model.bin", content(2, size)); r.code != 403 || r.detail() == "" {
		t.Fatalf("upload refused by the Resource API: %v, want 403 with a detail", r)
	}
	sameStores(t, "after a refused upload", storesNow(t, bed, folder), before)
	a.loadOK(t, folder, "model.bin", size, sumOf(1, size))
	fresh(t, bed).loadOK(t, folder, "model.bin", size, sumOf(1, size))
	viewer.loadOK(t, folder, "model.bin", size, sumOf(1, size))
}

// TestUploadAPIDownLeavesTheVersion: an upload while the Resource API is
// down fails with 502 and leaves v1 whole, on the CDN and for readers
// once the API is back.
func TestUploadAPIDownLeavesTheVersion(t *testing.T) {
	const size = 1<<20 + 5
	bed, a, folder := publishBed(t, testbed.Options{}, "model.bin", size)
	before := storesNow(t, bed, folder)
	bed.API.SetDown(true)
	if r := a.upload(t, folder, "model.bin", content(2, size)); r.code != 502 || r.detail() == "" {
		t.Fatalf("upload with the Resource API down: %v, want 502 with a detail", r)
	}
	bed.API.SetDown(false)
	sameStores(t, "after an upload with the API down", storesNow(t, bed, folder), before)
	a.loadOK(t, folder, "model.bin", size, sumOf(1, size))
	fresh(t, bed).loadOK(t, folder, "model.bin", size, sumOf(1, size))
}

// wholeOrError fails t unless got is one of the versions whole or a 502
// with a JSON detail.
func wholeOrError(t *testing.T, what string, got loaded, size int64, versions ...[32]byte) {
	t.Helper()
	if got.code == 200 {
		if got.readErr == nil && got.n == size && slices.Contains(versions, got.sum) {
			return
		}
		t.Fatalf("%s: 200 with %d bytes (%v) that are no version whole", what, got.n, got.readErr)
	}
	var e struct{ Detail string }
	if got.code != 502 || json.Unmarshal(got.body, &e) != nil || e.Detail == "" {
		t.Fatalf("%s: %d %s, want a whole version or 502 with a detail", what, got.code, got.body)
	}
}

// TestNoMixWhenAPIDown: device A holds v2; v1 is uploaded from elsewhere;
// with the Resource API down, A's /load never answers 200 with a mix of
// the two: A's small part is of v2, the CDN's big part says v1, and the
// small part cannot be fetched again (issue 11, case 2).
func TestNoMixWhenAPIDown(t *testing.T) {
	const size = 3<<20 + 11
	bed, a, folder := publishBed(t, testbed.Options{}, "model.bin", size)
	fresh(t, bed).uploadOK(t, folder, "model.bin", content(2, size))
	a.loadOK(t, folder, "model.bin", size, sumOf(2, size))
	fresh(t, bed).uploadOK(t, folder, "model.bin", content(3, size))
	bed.API.SetDown(true)
	got := a.load(t, folder, "model.bin")
	wholeOrError(t, "load with the API down", got, size, sumOf(2, size), sumOf(3, size))
	if got.code == 200 {
		t.Fatal("load with the API down answered 200: the old small part was merged with the new big part")
	}
	bed.API.SetDown(false)
	a.loadOK(t, folder, "model.bin", size, sumOf(3, size))
}

// copyObject copies folder/from's big part over folder/to's in MinIO, its
// metadata with it, as someone with write access to the CDN could.
func copyObject(t *testing.T, bed *testbed.Bed, folder, from, to string) {
	t.Helper()
	bucket, src, dst := folder, from+".big", to+".big"
	if bed.Bucket != "" {
		bucket, src, dst = bed.Bucket, folder+"/"+src, folder+"/"+dst
	}
	_, err := bed.MinIO.Root().CopyObject(ctx(t), &s3.CopyObjectInput{
		Bucket: &bucket, Key: &dst, CopySource: aws.String(bucket + "/" + src),
		MetadataDirective: types.MetadataDirectiveCopy,
	})
	if err != nil {
		t.Fatalf("copy %s over %s: %v", src, dst, err)
	}
}

// TestPlantedBigPartFails: another resource's big part copied under a name
// makes an open of that name fail with 502, on a device that read it
// before and on one that did not, never serve wrong bytes.
func TestPlantedBigPartFails(t *testing.T) {
	const size = 1<<20 + 77
	bed, a, folder := publishBed(t, testbed.Options{}, "x.bin", size)
	a.uploadOK(t, folder, "y.bin", content(2, size))
	copyObject(t, bed, folder, "y.bin", "x.bin")
	for _, l := range []*loader{a, fresh(t, bed)} {
		got := l.load(t, folder, "x.bin")
		wholeOrError(t, "load of a planted big part", got, size, sumOf(1, size))
		if got.code != 502 {
			t.Fatalf("load of a planted big part: %d, want 502", got.code)
		}
	}
	a.loadOK(t, folder, "y.bin", size, sumOf(2, size))
}

// TestMismatchResolvedByRetry: an open that finds the two parts of
// different versions, as in the window of an upload between storing the
// small part and publishing the big part, asks again after a short wait
// and serves the new version whole once both stores have it.
func TestMismatchResolvedByRetry(t *testing.T) {
	const size = 1<<20 + 3
	for _, smallFirst := range []bool{true, false} {
		bed, a, folder := publishBed(t, testbed.Options{}, "model.bin", size)
		a.uploadOK(t, folder, "next.bin", content(2, size)) // v2's parts, to move in place
		newSmall := bed.SmallPart(t, folder, "next.bin")
		moveSmall := func() {
			if err := bed.API.Put(folder, "model.bin.small", newSmall); err != nil {
				t.Error(err)
			}
		}
		moveBig := func() { copyObject(t, bed, folder, "next.bin", "model.bin") }
		first, second := moveSmall, moveBig
		if !smallFirst {
			first, second = moveBig, moveSmall
		}
		first()
		// The second part moves as soon as the open has fetched the
		// small part once, well within its wait.
		gets := bed.API.Requests()[refapi.RouteGet]
		done := make(chan struct{})
		go func() {
			defer close(done)
			deadline := time.Now().Add(10 * time.Second)
			for bed.API.Requests()[refapi.RouteGet] == gets && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			second()
		}()
		got := a.load(t, folder, "model.bin")
		<-done
		if got.code != 200 || got.n != size || got.sum != sumOf(2, size) {
			t.Fatalf("small part first %v: load %d, %d bytes, v2 %v; want v2 whole", smallFirst, got.code, got.n, got.sum == sumOf(2, size))
		}
	}
}

// TestUploadTwoFileParts: an upload with two file parts is refused with 400
// before anything is stored on the CDN or the Resource API.
func TestUploadTwoFileParts(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	l := fresh(t, bed)
	before := storesNow(t, bed, folder)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("folder", folder)
	for _, seed := range []uint64{1, 2} {
		fw, _ := mw.CreateFormFile("file", "two.bin")
		io.Copy(fw, content(seed, 100<<10))
	}
	mw.Close()
	req, _ := http.NewRequest("POST", l.url+"/upload/two.bin", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if r := do(t, req); r.code != 400 || !strings.Contains(r.detail(), "more than one file part") {
		t.Fatalf("upload with two file parts: %v, want 400 more than one file part", r)
	}
	sameStores(t, "after an upload with two file parts", storesNow(t, bed, folder), before)
	if got := l.load(t, folder, "two.bin"); got.code != 404 {
		t.Fatalf("load after the refused upload: %d %s, want 404", got.code, got.body)
	}
}

// TestNameLengths: folders and names of 200 bytes upload and load; 201
// bytes are a 400 on /upload and /load, and nothing is stored.
func TestNameLengths(t *testing.T) {
	bed := testbed.New(t, testbed.Options{SingleBucket: true}) // a 200-byte folder is no bucket name
	l := fresh(t, bed)
	f200, n200 := strings.Repeat("f", 200), strings.Repeat("n", 200)
	l.uploadOK(t, f200, n200, content(1, 5000))
	l.loadOK(t, f200, n200, 5000, sumOf(1, 5000))
	before := storesNow(t, bed, f200)
	for _, c := range [][2]string{{f200 + "f", n200}, {f200, n200 + "n"}} {
		if r := l.upload(t, c[0], c[1], content(2, 5000)); r.code != 400 {
			t.Fatalf("upload of a %d-byte folder, %d-byte name: %v, want 400", len(c[0]), len(c[1]), r)
		}
		if got := l.load(t, c[0], c[1]); got.code != 400 {
			t.Fatalf("load of a %d-byte folder, %d-byte name: %d %s, want 400", len(c[0]), len(c[1]), got.code, got.body)
		}
	}
	sameStores(t, "after refused names", storesNow(t, bed, f200), before)
	if s := storesNow(t, bed, f200+"f"); len(s.cdn) != 0 || len(s.api) != 0 {
		t.Fatalf("a 201-byte folder was stored: %v", s)
	}
}

// TestPublishFailsLeavesTheVersion: when the copy that publishes the big
// part fails after the small part was stored (here the staged object
// vanishes in that window), the upload fails with 502, the old small part
// is put back, and every reader still gets v1 whole.
func TestPublishFailsLeavesTheVersion(t *testing.T) {
	const size = 1<<20 + 9
	bed, a, folder := publishBed(t, testbed.Options{}, "model.bin", size)
	before := storesNow(t, bed, folder)
	// The hook runs on the API's goroutine: it reports with t.Error only.
	bed.API.OnStored(func(string, string) {
		bed.API.OnStored(nil) // the put-back is stored too
		out, err := bed.MinIO.Root().ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: &folder})
		if err != nil {
			t.Error(err)
			return
		}
		for _, o := range out.Contents {
			if strings.Contains(aws.ToString(o.Key), ".big.staging-") {
				if _, err := bed.MinIO.Root().DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: &folder, Key: o.Key}); err != nil {
					t.Error(err)
				}
			}
		}
	})
	if r := a.upload(t, folder, "model.bin", content(2, size)); r.code != 502 || r.detail() == "" {
		t.Fatalf("upload whose publish fails: %v, want 502 with a detail", r)
	}
	sameStores(t, "after a failed publish", storesNow(t, bed, folder), before)
	a.loadOK(t, folder, "model.bin", size, sumOf(1, size))
	fresh(t, bed).loadOK(t, folder, "model.bin", size, sumOf(1, size))
}
