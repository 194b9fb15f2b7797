package fs

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/azaion/loader/resources"
	"github.com/azaion/loader/resources/testbed"
)

// plant copies the stack folder's big part of from over to's in MinIO,
// metadata and all, as someone with write access to the CDN could.
func (s *stack) plant(t *testing.T, from, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket, dst := s.folder, to+".big"
	_, err := s.bed.MinIO.Root().CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &bucket, Key: &dst, CopySource: aws.String(bucket + "/" + from + ".big"),
		MetadataDirective: types.MetadataDirectiveCopy,
	})
	if err != nil {
		t.Fatalf("copy %s over %s: %v", from, to, err)
	}
}

// TestStackPlantedBigPartEIO: another resource's big part under a name is
// EIO through the mount (PROTOCOL §4: its metadata names another small
// part), never that resource's bytes decrypted with the wrong head.
func TestStackPlantedBigPartEIO(t *testing.T) {
	s := newStack(t, testbed.Options{})
	const size = 1<<20 + 33
	s.upload(t, nil, "x.bin", newPattern(1, size))
	ySum := s.upload(t, nil, "y.bin", newPattern(2, size))
	s.plant(t, "y.bin", "x.bin")
	_, dir := s.fresh(t, Options{})
	_, err := os.ReadFile(filepath.Join(dir, "x.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a planted big part: %v, want EIO", err)
	}
	if sum, n := fileSum(t, filepath.Join(dir, "y.bin")); sum != ySum || n != size {
		t.Fatalf("y.bin: %d bytes, SHA-256 differs %v", n, sum != ySum)
	}
}

// TestStackNoMixWhenAPIDown: a mount that read v1, with v2 uploaded by
// another loader and the Resource API down, reads a whole version or gets
// EIO, never a mix; once the API is back it reads v2 (issue 11, case 2).
func TestStackNoMixWhenAPIDown(t *testing.T) {
	s := newStack(t, testbed.Options{})
	const size = 2<<20 + 5
	v1 := s.upload(t, nil, "m.bin", newPattern(1, size))
	_, dir := s.fresh(t, Options{EntryTimeout: 50 * time.Millisecond})
	if sum, _ := fileSum(t, filepath.Join(dir, "m.bin")); sum != v1 {
		t.Fatal("v1 read back wrong")
	}
	v2 := s.upload(t, nil, "m.bin", newPattern(2, size))
	s.bed.API.SetDown(true)
	time.Sleep(100 * time.Millisecond) // the kernel asks the mount again
	b, err := os.ReadFile(filepath.Join(dir, "m.bin"))
	if err == nil {
		if sum := sha256.Sum256(b); sum != v1 && sum != v2 {
			t.Fatalf("read with the API down: %d bytes that are no version whole", len(b))
		}
	} else if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with the API down: %v, want a whole version or EIO", err)
	}
	s.bed.API.SetDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, _ := fileSum(t, filepath.Join(dir, "m.bin"))
		if sum == v2 {
			break
		}
		if sum != v1 || time.Now().After(deadline) {
			t.Fatal("after the API is back: not v2")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStackNameLengths: names of 200 bytes are served by the mount; 201
// bytes are ENOENT (a name that cannot exist, as every other bad name),
// and the Store refuses to upload one.
func TestStackNameLengths(t *testing.T) {
	s := newStack(t, testbed.Options{})
	n200 := strings.Repeat("n", 200)
	sum := s.upload(t, nil, n200, newPattern(1, 5000))
	_, dir := s.fresh(t, Options{})
	if got, n := fileSum(t, filepath.Join(dir, n200)); got != sum || n != 5000 {
		t.Fatalf("200-byte name: %d bytes, SHA-256 differs %v", n, got != sum)
	}
	for _, p := range []string{filepath.Join(dir, n200+"n"), filepath.Join(filepath.Dir(dir), strings.Repeat("f", 201))} {
		if _, err := os.Stat(p); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("stat of a 201-byte name: %v, want ENOENT", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.up.Upload(ctx, s.folder, n200+"n", newPattern(1, 10)); !errors.Is(err, resources.ErrBadName) {
		t.Fatalf("upload of a 201-byte name: %v, want ErrBadName", err)
	}
}
