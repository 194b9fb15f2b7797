package resources

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// testKey and wrongKey are fixed AES keys, so that every constructed
// ciphertext below is the same on every run.
var (
	testKey  = AESKey("crypto test key")
	wrongKey = AESKey("crypto test wrong key")
	testIV   = []byte("0123456789abcdef")
)

// rawCBC encrypts whole blocks of plain with no padding at all: the tests
// choose the last plaintext block, and so the padding Decrypt will find.
func rawCBC(t testing.TB, key, iv, plain []byte) []byte {
	t.Helper()
	if len(plain)%BlockSize != 0 {
		t.Fatalf("rawCBC: %d bytes is not whole blocks", len(plain))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte{}, iv...), plain...)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out[BlockSize:], out[BlockSize:])
	return out
}

// withLast returns n bytes of fixed filler followed by the chosen last block.
func withLast(n int, last string) []byte {
	p := bytes.Repeat([]byte{'x'}, n)
	return append(p, []byte(last)...)
}

// rejectCases are ciphertexts that decrypt(testKey) must refuse, each built
// so that the reason is certain.
func rejectCases(t testing.TB) []struct {
	name string
	c    []byte
} {
	last := func(filler int, block string) []byte {
		if len(block) != BlockSize {
			t.Fatalf("block %q is %d bytes", block, len(block))
		}
		return rawCBC(t, testKey, testIV, withLast(filler, block))
	}
	valid := rawCBC(t, testKey, testIV, withLast(16, "abcdefghijklmno\x01"))
	return []struct {
		name string
		c    []byte
	}{
		{"empty", nil},
		{"iv only", testIV},
		{"31 bytes", valid[:31]},
		{"33 bytes", append(append([]byte{}, valid...), 0)},
		{"47 bytes", valid[:47]},
		{"47 bytes of a longer one", append(valid[:32:32], valid[32:47]...)},
		{"pad byte 0", last(0, "abcdefghijklmno\x00")},
		{"pad byte 0 after a block", last(32, "abcdefghijklmno\x00")},
		{"pad byte 17", last(0, "abcdefghijklmno\x11")},
		{"pad byte 17 all 17", last(0, strings.Repeat("\x11", 16))},
		{"pad byte 255", last(16, "abcdefghijklmno\xff")},
		{"pad 2 over 1", last(0, "abcdefghijklmn\x01\x02")},
		{"pad 4 over 3", last(0, "abcdefghijkl\x04\x04\x03\x04")},
		{"pad 16 first byte 15", last(16, "\x0f"+strings.Repeat("\x10", 15))},
		{"pad 16 one byte off", last(0, strings.Repeat("\x10", 7)+"\x00"+strings.Repeat("\x10", 8))},
		{"pad 8 first pad byte off", last(0, "abcdefgh\x09"+strings.Repeat("\x08", 7))},
	}
}

func TestDecryptRejects(t *testing.T) {
	for _, c := range rejectCases(t) {
		got, err := DecryptKey(testKey, c.c)
		if !errors.Is(err, ErrDecrypt) || got != nil {
			t.Errorf("%s: DecryptKey = %q, %v; want nil, ErrDecrypt", c.name, got, err)
			continue
		}
		// Neither the key nor any plaintext byte shows in the error.
		if msg := err.Error(); strings.Contains(msg, hex.EncodeToString(testKey)) || strings.Contains(msg, "abcdefg") {
			t.Errorf("%s: error %q leaks key or plaintext", c.name, msg)
		}
	}
}

// TestDecryptAcceptsEveryPadding checks the other side of the padding rule:
// pad lengths 1..16 with all pad bytes right decrypt, and remove exactly n.
func TestDecryptAcceptsEveryPadding(t *testing.T) {
	for n := 1; n <= BlockSize; n++ {
		head := "ABCDEFGHIJKLMNOP"[:BlockSize-n]
		block := head + strings.Repeat(string(rune(n)), n)
		c := rawCBC(t, testKey, testIV, withLast(16, block))
		got, err := DecryptKey(testKey, c)
		want := string(withLast(16, head))
		if err != nil || string(got) != want {
			t.Errorf("pad %d: DecryptKey = %q, %v; want %q", n, got, err, want)
		}
	}
}

// wrongKeyCipher builds a ciphertext that testKey decrypts (to body blocks
// of filler, one block of noise and 15 more bytes) and wrongKey cannot: under
// wrongKey the last plaintext byte is 0, an invalid padding, by construction.
func wrongKeyCipher(t testing.TB, bodyBlocks int) (c []byte, plainLen int) {
	t.Helper()
	right, _ := aes.NewCipher(testKey)
	wrong, _ := aes.NewCipher(wrongKey)
	last := make([]byte, BlockSize)
	dr, dw := make([]byte, BlockSize), make([]byte, BlockSize)
	for i := 0; ; i++ {
		if i == 1<<16 {
			t.Fatal("no block found")
		}
		last[0], last[1] = byte(i), byte(i>>8)
		right.Decrypt(dr, last)
		wrong.Decrypt(dw, last)
		// Previous block p: right key's last byte dr^p = 1, wrong key's dw^p = 0.
		if dr[15]^dw[15] == 1 {
			break
		}
	}
	prev := bytes.Repeat([]byte{0x5a}, BlockSize)
	prev[15] = dw[15]
	c = rawCBC(t, testKey, testIV, bytes.Repeat([]byte{'b'}, bodyBlocks*BlockSize))
	c = append(append(c, prev...), last...)
	return c, (bodyBlocks+2)*BlockSize - 1
}

func TestDecryptWrongKey(t *testing.T) {
	for _, body := range []int{0, 1, 100} {
		c, plainLen := wrongKeyCipher(t, body)
		if got, err := DecryptKey(testKey, c); err != nil || len(got) != plainLen {
			t.Fatalf("body %d: right key: %d bytes, %v; want %d", body, len(got), err, plainLen)
		}
		if got, err := DecryptKey(wrongKey, c); !errors.Is(err, ErrDecrypt) || got != nil {
			t.Fatalf("body %d: wrong key: %d bytes, %v; want ErrDecrypt", body, len(got), err)
		}
	}
}

func TestDecryptWrongSecret(t *testing.T) {
	c, err := Encrypt("right", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decrypt("right", c); err != nil || string(got) != "hello" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	// Decrypt("wrong", c) may pass the padding check by chance; the
	// deterministic wrong-key case is TestDecryptWrongKey.
	if _, err := Decrypt("right", c[:len(c)-1]); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestEncryptFreshIV(t *testing.T) {
	a, _ := Encrypt("s", []byte("same"))
	b, _ := Encrypt("s", []byte("same"))
	if bytes.Equal(a[:BlockSize], b[:BlockSize]) {
		t.Fatal("two encryptions share an IV")
	}
}

func TestKeyErrors(t *testing.T) {
	if _, err := EncryptKey([]byte("short"), nil); err == nil {
		t.Error("EncryptKey with a 5-byte key succeeded")
	}
	if _, err := DecryptKey([]byte("short"), make([]byte, 32)); err == nil || errors.Is(err, ErrDecrypt) {
		t.Errorf("DecryptKey with a 5-byte key: %v, want a key error", err)
	}
}

func TestNormEmail(t *testing.T) {
	for in, want := range map[string]string{
		"a@b.c":                 "a@b.c",
		" A@B.C ":               "a@b.c",
		"\t\r\nMiXeD@Mail.IO\n": "mixed@mail.io",
		"in ner@x.y":            "in ner@x.y",
		"":                      "",
		"ÄÖ@Ü.DE":               "äö@ü.de",
	} {
		if got := NormEmail(in); got != want {
			t.Errorf("NormEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHWHashShape(t *testing.T) {
	// Base64 of 48 bytes: 64 characters, no padding needed.
	h := HWHash("")
	if len(h) != 64 || strings.ContainsAny(h, "=\n") {
		t.Fatalf("HWHash(\"\") = %q", h)
	}
	if HWHash("a") == HWHash("a ") {
		t.Fatal("HWHash ignores a trailing space")
	}
}
