package cdn_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/azaion/loader/resources/cdn"
)

// TestHead: one ranged GET gives the object's first bytes with the size
// and ETag a Stat gives; a shorter object gives all it has; an absent one
// is ErrNotFound.
func TestHead(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			for _, size := range []int{1, 4096, 4097, 3<<20 + 7} {
				data := random(t, size)
				if _, err := l.client.Put(c, l.folder, "head.bin", bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				st, err := l.client.Stat(c, l.folder, "head.bin")
				if err != nil {
					t.Fatal(err)
				}
				p := make([]byte, 4096)
				obj, n, err := l.client.Head(c, l.folder, "head.bin", p)
				want := data[:min(size, len(p))]
				if err != nil || obj != st || n != len(want) || !bytes.Equal(p[:n], want) {
					t.Fatalf("size %d: %+v, %d bytes, %v; want %+v, %d bytes", size, obj, n, err, st, len(want))
				}
			}
			if _, _, err := l.client.Head(c, l.folder, "absent", make([]byte, 32)); !errors.Is(err, cdn.ErrNotFound) {
				t.Fatalf("absent: %v", err)
			}
		})
	}
}
