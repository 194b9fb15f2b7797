package cdn_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources/cdn"
	"github.com/azaion/loader/resources/cdn/cdntest"
)

func TestMain(m *testing.M) { cdntest.Main(m) }

// layout is one of PROTOCOL §4's two layouts on a fresh bucket.
type layout struct {
	name   string
	client *cdn.Client
	folder string
	mc     *cdntest.MinIO
}

func layouts(t *testing.T, opt cdn.Options) []layout {
	mc := cdntest.Shared(t)
	perFolder := mc.NewBucket(t) // the folder is the bucket
	single := mc.NewBucket(t)
	a, err := cdn.New(mc.Config(""), opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cdn.New(mc.Config(single), opt)
	if err != nil {
		t.Fatal(err)
	}
	return []layout{{"bucket-per-folder", a, perFolder, mc}, {"single-bucket", b, "models", mc}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// unknownLength hides every interface but io.Reader.
type unknownLength struct{ io.Reader }

func TestPutStatRead(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			for _, size := range []int{0, 1000, 20<<20 + 12345} {
				data := random(t, size)
				name := "model-" + string(rune('a'+size%26)) + ".onnx"
				put, err := l.client.Put(c, l.folder, name, unknownLength{bytes.NewReader(data)})
				if err != nil {
					t.Fatalf("put %d bytes: %v", size, err)
				}
				if put.Size != int64(size) || put.ETag == "" {
					t.Fatalf("put %d bytes: got %+v", size, put)
				}
				st, err := l.client.Stat(c, l.folder, name)
				if err != nil {
					t.Fatal(err)
				}
				if st.Size != put.Size || st.ETag != put.ETag || st.Meta != nil {
					t.Fatalf("stat %+v, put %+v", st, put)
				}
				// The object is where the layout says, under the root user too.
				bucket, key := l.client.Key(l.folder, name)
				if _, err := l.mc.Root().HeadObject(c, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err != nil {
					t.Fatalf("head %s/%s: %v", bucket, key, err)
				}
				checkRanges(t, c, l, name, put.ETag, data)
			}
		})
	}
}

func checkRanges(t *testing.T, c context.Context, l layout, name, etag string, data []byte) {
	t.Helper()
	size := int64(len(data))
	if size == 0 {
		n, err := l.client.ReadAt(c, l.folder, name, etag, make([]byte, 10), 0)
		if n != 0 || err != io.EOF {
			t.Fatalf("read empty object: %d, %v", n, err)
		}
		return
	}
	// The whole object in 3 MiB reads, compared by SHA-256.
	h := sha256.New()
	buf := make([]byte, 3<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n, err := l.client.ReadAt(c, l.folder, name, etag, buf, off)
		if err != nil && !(err == io.EOF && off+int64(n) == size) {
			t.Fatalf("read at %d: %d, %v", off, n, err)
		}
		h.Write(buf[:n])
	}
	if got, want := h.Sum(nil), sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Fatalf("sha256 %x, want %x", got, want)
	}
	for _, r := range [][2]int64{{0, 1}, {1, 15}, {size / 2, 4096}, {size - 1, 1}, {size - 100, 100}, {8<<20 - 3, 7}} {
		off, n := r[0], r[1]
		if off < 0 || off+n > size {
			continue
		}
		p := make([]byte, n)
		got, err := l.client.ReadAt(c, l.folder, name, etag, p, off)
		if err != nil || int64(got) != n || !bytes.Equal(p, data[off:off+n]) {
			t.Fatalf("read %d at %d: %d, %v, equal %v", n, off, got, err, bytes.Equal(p, data[off:off+n]))
		}
	}
	// Past the end: the bytes that are there, then io.EOF.
	p := make([]byte, 64)
	got, err := l.client.ReadAt(c, l.folder, name, etag, p, size-10)
	if got != 10 || err != io.EOF || !bytes.Equal(p[:10], data[size-10:]) {
		t.Fatalf("read across the end: %d, %v", got, err)
	}
	if got, err := l.client.ReadAt(c, l.folder, name, etag, p, size); got != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v", got, err)
	}
}

func TestStaleETag(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			v1, err := l.client.Put(c, l.folder, "m", bytes.NewReader(random(t, 5000)))
			if err != nil {
				t.Fatal(err)
			}
			data2 := random(t, 5000)
			v2, err := l.client.Put(c, l.folder, "m", bytes.NewReader(data2))
			if err != nil {
				t.Fatal(err)
			}
			if v1.ETag == v2.ETag {
				t.Fatalf("same etag %s for different bytes", v1.ETag)
			}
			p := make([]byte, 100)
			if _, err := l.client.ReadAt(c, l.folder, "m", v1.ETag, p, 10); !errors.Is(err, cdn.ErrChanged) {
				t.Fatalf("stale etag: %v, want ErrChanged", err)
			}
			if _, err := l.client.Pin(l.folder, "m", v1.ETag).ReadAt(c, p, 10); !errors.Is(err, cdn.ErrChanged) {
				t.Fatalf("stale pin: %v, want ErrChanged", err)
			}
			if n, err := l.client.Pin(l.folder, "m", v2.ETag).ReadAt(c, p, 20); err != nil || n != 100 || !bytes.Equal(p, data2[20:120]) {
				t.Fatalf("current pin: %d, %v", n, err)
			}
			if n, err := l.client.ReadAt(c, l.folder, "m", v2.ETag, p, 10); err != nil || n != 100 || !bytes.Equal(p, data2[10:110]) {
				t.Fatalf("current etag: %d, %v", n, err)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			if _, err := l.client.Stat(c, l.folder, "absent"); !errors.Is(err, cdn.ErrNotFound) {
				t.Fatalf("stat: %v", err)
			}
			if _, err := l.client.ReadAt(c, l.folder, "absent", "", make([]byte, 4), 0); !errors.Is(err, cdn.ErrNotFound) {
				t.Fatalf("read: %v", err)
			}
			if _, err := l.client.Stat(c, "no-such-folder", "absent"); !errors.Is(err, cdn.ErrNotFound) {
				t.Fatalf("stat in missing folder: %v", err)
			}
		})
	}
	mc := cdntest.Shared(t)
	cl, err := cdn.New(mc.Config(""), cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.List(ctx(t), "no-such-bucket"); !errors.Is(err, cdn.ErrNotFound) {
		t.Fatalf("list of a missing bucket: %v", err)
	}
}

func TestListFolders(t *testing.T) {
	mc := cdntest.Shared(t)
	c := ctx(t)
	// Bucket per folder.
	a, b := mc.NewBucket(t), mc.NewBucket(t)
	cl, err := cdn.New(mc.Config(""), cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"z.onnx", "a.onnx", "m.bin"} {
		if _, err := cl.Put(c, a, n, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	mc.PutObject(t, a, "notes.txt", []byte("not a big part"))
	mc.PutObject(t, a, "sub/deep.big", []byte("nested"))
	mc.PutObject(t, a, ".hidden.big", []byte("bad name"))
	names, err := cl.List(c, a)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.onnx", "m.bin", "z.onnx"}; !slices.Equal(names, want) {
		t.Fatalf("list %v, want %v", names, want)
	}
	if names, err := cl.List(c, b); err != nil || len(names) != 0 {
		t.Fatalf("list of an empty folder: %v, %v", names, err)
	}
	folders, err := cl.Folders(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(folders, a) || !slices.Contains(folders, b) || !slices.IsSorted(folders) {
		t.Fatalf("folders %v lack %s or %s", folders, a, b)
	}
	// One bucket, folders as prefixes.
	single := mc.NewBucket(t)
	cl, err = cdn.New(mc.Config(single), cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range [][2]string{{"yolo", "v8.onnx"}, {"yolo", "v5.onnx"}, {"Big_Folder", "x"}} {
		if _, err := cl.Put(c, fn[0], fn[1], strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	mc.PutObject(t, single, "top.big", []byte("not in a folder"))
	folders, err = cl.Folders(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Big_Folder", "yolo"}; !slices.Equal(folders, want) {
		t.Fatalf("folders %v, want %v", folders, want)
	}
	names, err = cl.List(c, "yolo")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"v5.onnx", "v8.onnx"}; !slices.Equal(names, want) {
		t.Fatalf("list %v, want %v", names, want)
	}
}

func TestBadNamesNeverReachTheNetwork(t *testing.T) {
	mc := cdntest.Shared(t)
	proxy := cdntest.NewProxy(t, mc.Endpoint)
	cfg := mc.Config("")
	cfg.Host = proxy.URL()
	perFolder, err := cdn.New(cfg, cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bucket = "azaion"
	single, err := cdn.New(cfg, cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	p := make([]byte, 4)
	for _, folder := range []string{"Models", "ab", "under_score", strings.Repeat("a", 64)} {
		_, err := perFolder.Stat(c, folder, "x")
		if !errors.Is(err, cdn.ErrBadFolder) {
			t.Errorf("stat in folder %q: %v, want ErrBadFolder", folder, err)
		}
		if _, err := perFolder.List(c, folder); !errors.Is(err, cdn.ErrBadFolder) {
			t.Errorf("list of folder %q: %v, want ErrBadFolder", folder, err)
		}
	}
	for _, fn := range [][2]string{{"../x", "a"}, {"a/b", "c"}, {".hidden", "c"}, {"ok-folder", "../etc"}, {"ok-folder", "a/b"},
		{"ok-folder", ".big"}, {"ok-folder", "a\x00b"}, {"ok-folder", ""}, {"", "x"}, {"ok-folder", strings.Repeat("n", 256)}} {
		for _, cl := range []*cdn.Client{perFolder, single} {
			if _, err := cl.Stat(c, fn[0], fn[1]); !errors.Is(err, cdn.ErrBadName) {
				t.Errorf("stat %q/%q: %v, want ErrBadName", fn[0], fn[1], err)
			}
			if _, err := cl.ReadAt(c, fn[0], fn[1], "", p, 0); !errors.Is(err, cdn.ErrBadName) {
				t.Errorf("read %q/%q: %v, want ErrBadName", fn[0], fn[1], err)
			}
			if _, err := cl.Put(c, fn[0], fn[1], strings.NewReader("x")); !errors.Is(err, cdn.ErrBadName) {
				t.Errorf("put %q/%q: %v, want ErrBadName", fn[0], fn[1], err)
			}
		}
	}
	if n := proxy.Conns(); n != 0 {
		t.Fatalf("%d connections reached the CDN", n)
	}
}

func TestKeysAreSeparate(t *testing.T) {
	mc := cdntest.Shared(t)
	c := ctx(t)
	bucket := mc.NewBucket(t)
	// Writes use the uploader keys: give it the read-only user's and it fails.
	cfg := mc.Config(bucket)
	cfg.UploaderAccessKey, cfg.UploaderAccessSecret = mc.Downloader.AccessKey, mc.Downloader.SecretKey
	cl, err := cdn.New(cfg, cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(c, "f", "x", strings.NewReader("data")); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("put with read-only keys: %v, want AccessDenied", err)
	}
	// Reads use the downloader keys: a wrong downloader secret fails reads
	// but not writes, and never shows in the error.
	cfg = mc.Config(bucket)
	cfg.DownloaderAccessSecret = "WRONG-S3CRET-value"
	cl, err = cdn.New(cfg, cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(c, "f", "x", strings.NewReader("data")); err != nil {
		t.Fatalf("put with uploader keys: %v", err)
	}
	_, err = cl.Stat(c, "f", "x")
	if err == nil || errors.Is(err, cdn.ErrNotFound) || strings.Contains(err.Error(), "S3CRET") {
		t.Fatalf("stat with a wrong downloader secret: %v", err)
	}
	// Without uploader keys nothing is written.
	cfg = mc.Config(bucket)
	cfg.UploaderAccessKey, cfg.UploaderAccessSecret = "", ""
	cl, err = cdn.New(cfg, cdn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Put(c, "f", "y", strings.NewReader("data")); !errors.Is(err, cdn.ErrNoUploader) {
		t.Fatalf("put without uploader keys: %v", err)
	}
}

// failingReader gives n random bytes, then an error.
type failingReader struct{ n int }

var errSource = errors.New("upload source broke")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errSource
	}
	k := min(len(p), r.n)
	rand.Read(p[:k])
	r.n -= k
	return k, nil
}

func TestPutSourceFails(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			for _, n := range []int{100, 19 << 20} { // in the first part; after parts went up
				_, err := l.client.Put(c, l.folder, "broken", &failingReader{n: n})
				if !errors.Is(err, errSource) {
					t.Fatalf("put of a failing stream of %d bytes: %v", n, err)
				}
				if _, err := l.client.Stat(c, l.folder, "broken"); !errors.Is(err, cdn.ErrNotFound) {
					t.Fatalf("object after a failed put: %v", err)
				}
			}
			// No multipart upload left behind.
			bucket, key := l.client.Key(l.folder, "broken")
			out, err := l.mc.Root().ListMultipartUploads(c, &s3.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &key})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Uploads) != 0 {
				t.Fatalf("%d multipart uploads left behind", len(out.Uploads))
			}
		})
	}
}
