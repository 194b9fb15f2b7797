package resources

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// Seeds live in testdata/fuzz/<FuzzName>/ as well; run a target with
// go test -run '^$' -fuzz '^FuzzDecrypt$' -fuzztime 20s ./resources/

// FuzzDecrypt: Decrypt never panics, fails only with ErrDecrypt, and what it
// accepts is exactly the envelope of its output under the same IV.
func FuzzDecrypt(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	c, _ := encryptIV(testKey, testIV, []byte("seed plaintext"))
	f.Add(c)
	f.Fuzz(func(t *testing.T, c []byte) {
		plain, err := DecryptKey(testKey, c)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || plain != nil {
				t.Fatalf("DecryptKey(%d bytes) = %d bytes, %v; want nil, ErrDecrypt", len(c), len(plain), err)
			}
			return
		}
		again, err := encryptIV(testKey, c[:BlockSize], plain)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("re-encrypting the %d-byte plaintext of a %d-byte ciphertext does not give it back", len(plain), len(c))
		}
		if CipherLen(int64(len(plain))) != int64(len(c)) {
			t.Fatalf("CipherLen(%d) = %d, ciphertext %d", len(plain), CipherLen(int64(len(plain))), len(c))
		}
	})
}

// FuzzDecryptReader: the stream decrypts exactly what the whole-buffer
// Decrypt does, and fails exactly when it fails, fed any number of bytes at
// a time. filler puts up to three chunks of bytes in front of the fuzzed
// ones so that inputs cross the stream's chunk boundary.
func FuzzDecryptReader(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint32(0))
	c, _ := encryptIV(testKey, testIV, []byte("seed plaintext"))
	f.Add(c, uint32(0), uint32(1))
	f.Add(c[BlockSize:], uint32(streamChunk), uint32(7))
	f.Fuzz(func(t *testing.T, tail []byte, filler, feed uint32) {
		c := append(patternPlain(int64(filler%(3*streamChunk+BlockSize))), tail...)
		want, werr := DecryptKey(testKey, c)
		var src io.Reader = bytes.NewReader(c)
		switch feed % 4 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		case 3:
			src = iotest.DataErrReader(src)
		}
		dr, err := DecryptReader(testKey, src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(dr)
		if werr != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%d bytes: whole Decrypt fails (%v), stream ends with %v", len(c), werr, err)
			}
			if len(got) > max(0, len(c)-2*BlockSize) {
				t.Fatalf("%d bytes: stream handed out %d bytes before failing", len(c), len(got))
			}
			return
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: stream gives %d bytes, %v; whole gives %d", len(c), len(got), err, len(want))
		}
	})
}

// FuzzReaderVsWhole: any read at any offset of a Reader over the split
// parts gives the same bytes as the whole plaintext.
func FuzzReaderVsWhole(f *testing.F) {
	f.Add(uint32(0), int64(0), uint32(1), uint32(0))
	f.Add(uint32(10207), int64(3050), uint32(40), uint32(1))
	f.Add(uint32(10208), int64(10207), uint32(2), uint32(2))
	f.Add(uint32(100000), int64(-1), uint32(10), uint32(3))
	f.Add(uint32(70001), int64(69999), uint32(65536), uint32(4))
	f.Fuzz(func(t *testing.T, plainLen uint32, off int64, length uint32, salt uint32) {
		ctx := context.Background()
		n := int64(plainLen % (1 << 18))
		plain := patternPlain(n + int64(salt%251))[salt%251:]
		iv := bytes.Repeat([]byte{byte(salt), byte(salt >> 8)}, BlockSize/2)
		c, err := encryptIV(testKey, iv, plain)
		if err != nil {
			t.Fatal(err)
		}
		small, big := Split(c)
		r, err := NewReader(ctx, testKey, small, BytesPart(big), int64(len(big)))
		if err != nil || r.Size() != n {
			t.Fatalf("NewReader over %d bytes: %v (size %d)", n, err, r.Size())
		}
		p := make([]byte, length%(1<<18))
		got, err := r.ReadAt(ctx, p, off)
		switch {
		case off < 0:
			if got != 0 || err == nil || err == io.EOF {
				t.Fatalf("ReadAt at %d = %d, %v; want 0 and an error", off, got, err)
			}
		case off >= n:
			if got != 0 || err != io.EOF {
				t.Fatalf("ReadAt at %d of %d = %d, %v; want 0, io.EOF", off, n, got, err)
			}
		default:
			want := plain[off:min(n, off+int64(len(p)))]
			if got != len(want) || !bytes.Equal(p[:got], want) {
				t.Fatalf("ReadAt(%d at %d of %d) = %d bytes, want %d, or wrong bytes", len(p), off, n, got, len(want))
			}
			if (got < len(p)) != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(%d at %d of %d) = %d, %v", len(p), off, n, got, err)
			}
		}
	})
}

// FuzzSplit: the small part is at most 3072 bytes and at most 30% of the
// ciphertext, as large as that allows, and the two parts make the whole.
func FuzzSplit(f *testing.F) {
	for _, n := range []int64{0, 16, 32, 48, 10223, 10224, 10239, 10240, 10256, 1 << 40} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		// Lengths up to 1 EiB; past about 3 EiB n*3 overflows (see report).
		n &= 1<<60 - 1
		k := SmallLen(n)
		if k < 0 || k > MaxSmallLen || 10*k > 3*n {
			t.Fatalf("SmallLen(%d) = %d: over 3072 or 30%%", n, k)
		}
		if k < MaxSmallLen && 10*(k+1) <= 3*n {
			t.Fatalf("SmallLen(%d) = %d: could be %d", n, k, k+1)
		}
		if n <= 1<<16 {
			c := patternPlain(n)
			small, big := Split(c)
			if int64(len(small)) != k || int64(len(small)+len(big)) != n || !bytes.Equal(append(append([]byte{}, small...), big...), c) {
				t.Fatalf("Split(%d bytes) = %d + %d", n, len(small), len(big))
			}
		}
		// n as a plaintext length.
		cl := CipherLen(n)
		if cl%BlockSize != 0 || cl-n < BlockSize+1 || cl-n > 2*BlockSize {
			t.Fatalf("CipherLen(%d) = %d", n, cl)
		}
		sp := SmallLenForPlain(n)
		if sp != SmallLen(cl) || (n >= 10208) != (sp == MaxSmallLen) {
			t.Fatalf("SmallLenForPlain(%d) = %d (ciphertext %d)", n, sp, cl)
		}
	})
}

// FuzzValidName: a name ValidName accepts has no '/', no NUL, does not
// start with '.', is 1..200 bytes of the allowed set; CheckNames agrees.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"", ".", "..", ".x", "a/b", "a\x00", "model.onnx", "%2e%2e", "é", strings.Repeat("a", 200), strings.Repeat("a", 201)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := ValidName(s)
		if ok {
			if len(s) < 1 || len(s) > 200 || s[0] == '.' || strings.ContainsAny(s, "/\x00\\") || s == ".." {
				t.Fatalf("ValidName(%q) = true", s)
			}
			if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
				t.Fatalf("ValidName(%q) = true with a byte outside the set", s)
			}
		}
		err := CheckNames(s, "x")
		if ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadName)) {
			t.Fatalf("ValidName(%q) = %v, CheckNames = %v", s, ok, err)
		}
		if err != nil && len(err.Error()) > 64*4+64 {
			t.Fatalf("CheckNames error of %d bytes", len(err.Error()))
		}
		if err := CheckNames("x", s); ok != (err == nil) {
			t.Fatalf("ValidName(%q) = %v, CheckNames(x, name) = %v", s, ok, err)
		}
		if ValidBucket(s) && (!ok || len(s) < 3 || len(s) > 63 || strings.ToLower(s) != s || strings.Contains(s, "_")) {
			t.Fatalf("ValidBucket(%q) = true", s)
		}
	})
}
