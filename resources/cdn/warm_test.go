package cdn_test

import (
	"errors"
	"testing"

	"github.com/azaion/loader/resources/cdn"
)

// TestWarm: the warm-up request succeeds on a folder's bucket that exists,
// and says ErrNotFound for one that does not (in the bucket-per-folder
// layout; in the one-bucket layout any folder is in the bucket). With no
// folder it lists the buckets, or heads the configured one.
func TestWarm(t *testing.T) {
	for _, l := range layouts(t, cdn.Options{}) {
		t.Run(l.name, func(t *testing.T) {
			c := ctx(t)
			if err := l.client.Warm(c, l.folder); err != nil {
				t.Fatalf("existing folder: %v", err)
			}
			if err := l.client.Warm(c, ""); err != nil {
				t.Fatalf("no folder: %v", err)
			}
			err := l.client.Warm(c, "no-such-folder-here")
			if l.client.Config().Bucket == "" && !errors.Is(err, cdn.ErrNotFound) {
				t.Fatalf("absent bucket: %v, want ErrNotFound", err)
			}
			if l.client.Config().Bucket != "" && err != nil {
				t.Fatalf("absent folder in the one bucket: %v", err)
			}
		})
	}
}
