package cdn_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/azaion/loader/resources/cdn"
)

// TestPutManyParts: a multipart upload of many parts, whose buffers are
// handed from one part to the next, stores exactly the bytes read, in
// order, whatever the sizes of the source's reads.
func TestPutManyParts(t *testing.T) {
	l := layouts(t, cdn.Options{PartSize: 5 << 20})[0]
	c := ctx(t)
	data := random(t, 9*(5<<20)+777) // ten parts, the last a short one
	for name, src := range map[string]io.Reader{
		"whole": unknownLength{bytes.NewReader(data)},
		"half":  iotest.HalfReader(bytes.NewReader(data)),
	} {
		put, err := l.client.Put(c, l.folder, name, src)
		if err != nil {
			t.Fatalf("%s: put: %v", name, err)
		}
		if put.Size != int64(len(data)) {
			t.Fatalf("%s: put %d bytes, want %d", name, put.Size, len(data))
		}
		bucket, key := l.client.Key(l.folder, name)
		out, err := l.mc.Root().GetObject(c, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, out.Body)
		out.Body.Close()
		if err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), sha(data)) {
			t.Fatalf("%s: the stored object (%d bytes, %v) is not the bytes put (%d)", name, n, err, len(data))
		}
	}
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
