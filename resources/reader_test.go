package resources

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
)

func TestReaderMatchesWholeDecrypt(t *testing.T) {
	ctx := context.Background()
	key := AESKey("resource key")
	for _, size := range []int{0, 1, 15, 16, 17, 4095, 10207, 10208, 10224, 1 << 20, 3<<20 + 5} {
		plain := make([]byte, size)
		rand.Read(plain)
		c, err := EncryptKey(key, plain)
		if err != nil {
			t.Fatal(err)
		}
		small, big := Split(c)
		r, err := NewReader(ctx, key, small, BytesPart(big), int64(len(big)))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if r.Size() != int64(size) {
			t.Fatalf("size %d: Size() = %d", size, r.Size())
		}
		got, err := io.ReadAll(io.NewSectionReader(r.At(ctx), 0, r.Size()))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: whole read differs (err %v)", size, err)
		}
		rng := mrand.New(mrand.NewPCG(uint64(size), 1))
		for i := 0; i < 200; i++ {
			off := rng.Int64N(int64(size) + 40)
			p := make([]byte, rng.IntN(70000))
			n, err := r.ReadAt(ctx, p, off)
			want := []byte{}
			if off < int64(size) {
				want = plain[off:min(int64(size), off+int64(len(p)))]
			}
			if n != len(want) || !bytes.Equal(p[:n], want) {
				t.Fatalf("size %d: ReadAt(%d, %d) = %d bytes, want %d", size, len(p), off, n, len(want))
			}
			if n < len(p) && err != io.EOF {
				t.Fatalf("size %d: short read without io.EOF: %v", size, err)
			}
		}
	}
}

func TestStreamsRoundTrip(t *testing.T) {
	key := AESKey("k")
	for _, size := range []int{0, 1, 16, 17, streamChunk - 1, streamChunk, streamChunk + 1, 3*streamChunk + 7} {
		plain := make([]byte, size)
		rand.Read(plain)
		er, err := EncryptReader(key, bytes.NewReader(plain))
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(er)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(c)) != CipherLen(int64(size)) {
			t.Fatalf("size %d: ciphertext %d bytes, want %d", size, len(c), CipherLen(int64(size)))
		}
		whole, err := DecryptKey(key, c)
		if err != nil || !bytes.Equal(whole, plain) {
			t.Fatalf("size %d: whole decrypt of stream differs: %v", size, err)
		}
		dr, _ := DecryptReader(key, bytes.NewReader(c))
		got, err := io.ReadAll(dr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: stream decrypt differs: %v", size, err)
		}
		dr, _ = DecryptReader(key, bytes.NewReader(c[:len(c)-1]))
		if _, err := io.ReadAll(dr); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("size %d: truncated stream: err %v, want ErrDecrypt", size, err)
		}
		dr, _ = DecryptReader(AESKey("wrong"), bytes.NewReader(c))
		if _, err := io.ReadAll(dr); !errors.Is(err, ErrDecrypt) {
			// A wrong key gives a valid padding by chance about 1 time in 256.
			t.Logf("size %d: wrong key passed the padding check (err %v)", size, err)
		}
	}
}
