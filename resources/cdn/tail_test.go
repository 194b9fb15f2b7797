package cdn_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/azaion/loader/resources/cdn"
)

// TestTail: one suffix-ranged GET gives the object's last bytes with the
// size and ETag a Stat gives; a shorter object gives all it has; an absent
// one is ErrNotFound.
func TestTail(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			for _, size := range []int{20, 32, 33, 5<<20 + 7} {
				data := random(t, size)
				name := "tail.bin"
				if _, err := l.client.Put(c, l.folder, name, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				st, err := l.client.Stat(c, l.folder, name)
				if err != nil {
					t.Fatal(err)
				}
				p := make([]byte, 32)
				obj, n, err := l.client.Tail(c, l.folder, name, p)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				want := data[max(size-32, 0):]
				if obj != st || n != len(want) || !bytes.Equal(p[:n], want) {
					t.Fatalf("size %d: %+v, %d bytes %x; want %+v, %x", size, obj, n, p[:n], st, want)
				}
			}
			if _, _, err := l.client.Tail(c, l.folder, "absent", make([]byte, 32)); !errors.Is(err, cdn.ErrNotFound) {
				t.Fatalf("absent: %v", err)
			}
		})
	}
}
