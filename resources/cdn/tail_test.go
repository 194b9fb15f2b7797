package cdn_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/azaion/loader/resources/cdn"
)

// TestEnds: one ranged GET gives the object's last bytes (Tail) or first
// bytes (Head) with the size and ETag a Stat gives; a shorter object gives
// all it has; an absent one is ErrNotFound.
func TestEnds(t *testing.T) {
	type endFunc func(*cdn.Client, context.Context, string, string, []byte) (cdn.Object, int, error)
	for _, e := range []struct {
		name  string
		read  endFunc
		room  int
		sizes []int
		want  func(data []byte, room int) []byte
	}{
		{"tail", (*cdn.Client).Tail, 32, []int{20, 32, 33, 5<<20 + 7},
			func(d []byte, room int) []byte { return d[max(len(d)-room, 0):] }},
		{"head", (*cdn.Client).Head, 4096, []int{1, 4096, 4097, 3<<20 + 7},
			func(d []byte, room int) []byte { return d[:min(len(d), room)] }},
	} {
		for _, l := range layouts(t, cdn.Options{}) {
			t.Run(e.name+"/"+l.name, func(t *testing.T) {
				c := ctx(t)
				name := e.name + ".bin"
				for _, size := range e.sizes {
					data := random(t, size)
					if _, err := l.client.Put(c, l.folder, name, bytes.NewReader(data)); err != nil {
						t.Fatal(err)
					}
					st, err := l.client.Stat(c, l.folder, name)
					if err != nil {
						t.Fatal(err)
					}
					p := make([]byte, e.room)
					obj, n, err := e.read(l.client, c, l.folder, name, p)
					want := e.want(data, e.room)
					if err != nil || obj.Size != st.Size || obj.ETag != st.ETag || n != len(want) || !bytes.Equal(p[:n], want) {
						t.Fatalf("size %d: %+v, %d bytes, %v; want %+v, %d bytes", size, obj, n, err, st, len(want))
					}
				}
				if _, _, err := e.read(l.client, c, l.folder, "absent", make([]byte, 32)); !errors.Is(err, cdn.ErrNotFound) {
					t.Fatalf("absent: %v", err)
				}
			})
		}
	}
}
