package cdn_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources/cdn"
)

// keys lists the keys of bucket under prefix, as the root user sees them.
func keys(t *testing.T, c context.Context, l layout, prefix string) []string {
	t.Helper()
	bucket, _ := l.client.Key(l.folder, "x")
	if l.client.Config().Bucket != "" {
		prefix = l.folder + "/" + prefix
	}
	out, err := l.mc.Root().ListObjectsV2(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, strings.TrimPrefix(*o.Key, l.folder+"/"))
	}
	slices.Sort(ks)
	return ks
}

// TestStagePublish: a staged big part is invisible to readers until it is
// published, by one CopyObject or (above CopyLimit) by UploadPartCopy
// parts; the published object carries the staged metadata, in Stat, Tail
// and Head alike, and Discard leaves no staged object behind.
func TestStagePublish(t *testing.T) {
	opt := cdn.Options{PartSize: 5 << 20, CopyLimit: 6 << 20, CopyPartSize: 5 << 20}
	for _, l := range layouts(t, opt) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			for _, size := range []int{1000, 12<<20 + 77} { // one copy; three part copies
				name := "model-" + l.name[:6] + string(rune('a'+size%26))
				old := random(t, 500)
				if _, err := l.client.Put(c, l.folder, name, bytes.NewReader(old)); err != nil {
					t.Fatal(err)
				}
				before, err := l.client.Stat(c, l.folder, name)
				if err != nil {
					t.Fatal(err)
				}
				data := random(t, size)
				meta := map[string]string{cdn.MetaSmallSHA256: strings.Repeat("ab", 32)}
				st, err := l.client.Stage(c, l.folder, name, unknownLength{bytes.NewReader(data)}, meta)
				if err != nil {
					t.Fatalf("stage %d bytes: %v", size, err)
				}
				if k, want := strings.TrimPrefix(st.Key(), l.folder+"/"), name+cdn.StagingSuffix; !strings.HasPrefix(k, want) || len(k) != len(want)+16 {
					t.Fatalf("staging key %q", st.Key())
				}
				// Staged: the published object and the listing are as before.
				if now, err := l.client.Stat(c, l.folder, name); err != nil || now.ETag != before.ETag || now.SmallSHA256() != "" {
					t.Fatalf("while staged: %+v, %v; want %+v", now, err, before)
				}
				if names, err := l.client.List(c, l.folder); err != nil || slices.Contains(names, strings.TrimPrefix(st.Key(), l.folder+"/")) || !slices.Contains(names, name) {
					t.Fatalf("list while staged: %q, %v", names, err)
				}
				if got := keys(t, c, l, name); len(got) != 2 {
					t.Fatalf("keys while staged: %q, want the big part and the staged one", got)
				}
				pub, err := st.Publish(c)
				if err != nil {
					t.Fatalf("publish %d bytes: %v", size, err)
				}
				if size > 6<<20 && !strings.HasSuffix(pub.ETag, "-3\"") {
					t.Fatalf("ETag %s: not the multipart copy of three parts", pub.ETag)
				}
				if err := st.Discard(c); err != nil {
					t.Fatalf("discard: %v", err)
				}
				if got := keys(t, c, l, name); !slices.Equal(got, []string{name + ".big"}) {
					t.Fatalf("keys after publish: %q, want only %s.big", got, name)
				}
				now, err := l.client.Stat(c, l.folder, name)
				if err != nil || now.Size != int64(size) || now.ETag != pub.ETag || now.SmallSHA256() != meta[cdn.MetaSmallSHA256] {
					t.Fatalf("published: stat %+v, %v; publish gave %+v", now, err, pub)
				}
				for _, end := range []func(context.Context, string, string, []byte) (cdn.Object, int, error){l.client.Tail, l.client.Head} {
					obj, _, err := end(c, l.folder, name, make([]byte, 32))
					if err != nil || obj.ETag != pub.ETag || obj.SmallSHA256() != meta[cdn.MetaSmallSHA256] {
						t.Fatalf("tail/head: %+v, %v", obj, err)
					}
				}
				got := make([]byte, size)
				if n, err := l.client.ReadAt(c, l.folder, name, pub.ETag, got, 0); n != size || err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read back %d of %d bytes, %v, equal %v", n, size, err, bytes.Equal(got, data))
				}
			}
		})
	}
}

// TestDiscardLeavesThePublished: a staged part discarded without a publish
// changes nothing a reader sees.
func TestDiscardLeavesThePublished(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			old := random(t, 4096)
			put, err := l.client.Put(c, l.folder, "kept", bytes.NewReader(old))
			if err != nil {
				t.Fatal(err)
			}
			st, err := l.client.Stage(c, l.folder, "kept", bytes.NewReader(random(t, 4096)), map[string]string{cdn.MetaSmallSHA256: "00"})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Discard(c); err != nil {
				t.Fatal(err)
			}
			if got := keys(t, c, l, "kept"); !slices.Equal(got, []string{"kept.big"}) {
				t.Fatalf("keys: %q", got)
			}
			got := make([]byte, len(old))
			if _, err := l.client.ReadAt(c, l.folder, "kept", put.ETag, got, 0); err != nil || !bytes.Equal(got, old) {
				t.Fatalf("the published part changed: %v", err)
			}
		})
	}
}
