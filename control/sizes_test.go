package control_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"testing"

	"github.com/azaion/loader/control"
	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/testbed"
)

// TestSizes uploads and loads every size around the block and split
// boundaries through the HTTP API, from a second loader with a cold cache,
// checking the split of PROTOCOL §2 as stored and the SHA-256 of the bytes
// that come back, in both CDN layouts.
func TestSizes(t *testing.T) {
	// The ciphertext lengths of the 3 KB split boundary, from the issue.
	for plain, want := range map[int64]int64{10207: 10224, 10208: 10240, 10224: 10256} {
		if got := resources.CipherLen(plain); got != want {
			t.Fatalf("CipherLen(%d) = %d, want %d", plain, got, want)
		}
	}
	sizes := []int64{0, 1, 15, 16, 17, 10207, 10208, 10224, 5 << 20}
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single_bucket=%v", single), func(t *testing.T) {
			bed := testbed.New(t, testbed.Options{SingleBucket: single})
			folder := bed.NewFolder(t)
			up := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
			up.loginOK(t)
			down := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
			down.loginOK(t)
			for i, size := range sizes {
				name := fmt.Sprintf("r%d.bin", size)
				seed := uint64(100 + i)
				up.uploadOK(t, folder, name, content(seed, size))
				checkSplit(t, bed, folder, name, size)
				down.loadOK(t, folder, name, size, sumOf(seed, size))
				up.loadOK(t, folder, name, size, sumOf(seed, size))
			}
		})
	}
}

// TestHugeResource streams a resource of 100 MiB through /upload and /load;
// neither side holds it.
func TestHugeResource(t *testing.T) {
	bed := testbed.New(t, testbed.Options{})
	folder := bed.NewFolder(t)
	up := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	up.loginOK(t)
	const size = 100<<20 + 12345
	h := sha256.New()
	up.uploadOK(t, folder, "huge.bin", io.TeeReader(content(42, size), h))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	checkSplit(t, bed, folder, "huge.bin", size)
	down := newLoader(t, bed, testbed.StoreOptions{}, control.Config{})
	down.loginOK(t)
	down.loadOK(t, folder, "huge.bin", size, sum)
}

// checkSplit checks the stored parts of folder/name against §2.
func checkSplit(t *testing.T, bed *testbed.Bed, folder, name string, size int64) {
	t.Helper()
	n := 16 + 16*(size/16+1)
	small := min(3072, n*3/10)
	if got := int64(len(bed.SmallPart(t, folder, name))); got != small {
		t.Fatalf("%s (%d bytes): small part %d bytes, want %d", name, size, got, small)
	}
	if got := bed.BigObject(t, folder, name); got != n-small {
		t.Fatalf("%s (%d bytes): big part %d bytes, want %d", name, size, got, n-small)
	}
}
