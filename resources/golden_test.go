package resources

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"testing"
)

// golden is testdata/golden.json, written by testdata/golden.py from Python's
// hashlib and the openssl command line, never from this package.
type golden struct {
	Secret    string `json:"secret"`
	AESKeyHex string `json:"aes_key_hex"`
	IVHex     string `json:"iv_hex"`
	Vectors   []struct {
		PlainLen     int64  `json:"plain_len"`
		PlainSHA256  string `json:"plain_sha256"`
		CipherLen    int64  `json:"cipher_len"`
		CipherSHA256 string `json:"cipher_sha256"`
		SmallLen     int64  `json:"small_len"`
		SmallSHA256  string `json:"small_sha256"`
		BigSHA256    string `json:"big_sha256"`
		CipherHex    string `json:"cipher_hex"`
	} `json:"vectors"`
	Hardware  string `json:"hardware"`
	HWHash    string `json:"hw_hash"`
	Email     string `json:"email"`
	NormEmail string `json:"norm_email"`
	Password  string `json:"password"`
	APIKey    string `json:"api_key"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("golden.json: %v", err)
	}
	if len(g.Vectors) != 8 {
		t.Fatalf("golden.json has %d vectors, want 8", len(g.Vectors))
	}
	return g
}

// patternPlain is the golden plaintext of n bytes: byte i is i % 251.
func patternPlain(n int64) []byte {
	p := make([]byte, n)
	for i := range p[:min(n, 251)] {
		p[i] = byte(i)
	}
	for k := int64(251); k < n; k *= 2 {
		copy(p[k:], p[:k])
	}
	return p
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenEnvelope(t *testing.T) {
	g := loadGolden(t)
	key := AESKey(g.Secret)
	if got := hex.EncodeToString(key); got != g.AESKeyHex {
		t.Fatalf("AESKey = %s, want %s", got, g.AESKeyHex)
	}
	iv := mustHex(t, g.IVHex)
	for _, v := range g.Vectors {
		plain := patternPlain(v.PlainLen)
		if sha(plain) != v.PlainSHA256 {
			t.Fatalf("plain %d: test plaintext differs from golden.py's", v.PlainLen)
		}
		c, err := encryptIV(key, iv, plain)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(c)) != v.CipherLen || CipherLen(v.PlainLen) != v.CipherLen {
			t.Errorf("plain %d: ciphertext %d bytes, CipherLen %d, want %d", v.PlainLen, len(c), CipherLen(v.PlainLen), v.CipherLen)
		}
		if v.CipherHex != "" && hex.EncodeToString(c) != v.CipherHex {
			t.Errorf("plain %d: ciphertext\n got %x\nwant %s", v.PlainLen, c, v.CipherHex)
		}
		if sha(c) != v.CipherSHA256 {
			t.Errorf("plain %d: ciphertext SHA-256 %s, want %s", v.PlainLen, sha(c), v.CipherSHA256)
		}
		if got := SmallLen(v.CipherLen); got != v.SmallLen {
			t.Errorf("plain %d: SmallLen(%d) = %d, want %d", v.PlainLen, v.CipherLen, got, v.SmallLen)
		}
		if got := SmallLenForPlain(v.PlainLen); got != v.SmallLen {
			t.Errorf("plain %d: SmallLenForPlain = %d, want %d", v.PlainLen, got, v.SmallLen)
		}
		small, big := Split(c)
		if int64(len(small)) != v.SmallLen || sha(small) != v.SmallSHA256 || sha(big) != v.BigSHA256 {
			t.Errorf("plain %d: Split gives small %d bytes %s, big %s; want %d bytes %s, big %s",
				v.PlainLen, len(small), sha(small), sha(big), v.SmallLen, v.SmallSHA256, v.BigSHA256)
		}

		// The golden ciphertext (rebuilt from our bytes only once they
		// matched the golden hashes above) decrypts back, whole, by stream
		// and through the Reader over its split parts.
		got, err := Decrypt(g.Secret, c)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("plain %d: Decrypt = %d bytes, %v", v.PlainLen, len(got), err)
		}
		dr, err := DecryptReader(key, bytes.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(dr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("plain %d: DecryptReader = %d bytes, %v", v.PlainLen, len(got), err)
		}
		ctx := context.Background()
		r, err := NewReader(ctx, key, small, BytesPart(big), int64(len(big)))
		if err != nil {
			t.Fatalf("plain %d: NewReader: %v", v.PlainLen, err)
		}
		if r.Size() != v.PlainLen || r.CipherLen() != v.CipherLen {
			t.Errorf("plain %d: Reader Size %d CipherLen %d", v.PlainLen, r.Size(), r.CipherLen())
		}
		got, err = io.ReadAll(io.NewSectionReader(r.At(ctx), 0, r.Size()))
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("plain %d: Reader = %d bytes, %v", v.PlainLen, len(got), err)
		}
	}
}

// TestGoldenSplitBoundary pins the lengths where the small part stops
// growing: the brief's facts, also asserted by golden.py.
func TestGoldenSplitBoundary(t *testing.T) {
	for _, c := range []struct{ plain, cipher, small int64 }{
		{0, 32, 9},
		{10207, 10224, 3067},
		{10208, 10240, 3072},
		{10224, 10256, 3072},
		{1 << 30, 1<<30 + 32, 3072},
	} {
		if got := CipherLen(c.plain); got != c.cipher {
			t.Errorf("CipherLen(%d) = %d, want %d", c.plain, got, c.cipher)
		}
		if got := SmallLen(c.cipher); got != c.small {
			t.Errorf("SmallLen(%d) = %d, want %d", c.cipher, got, c.small)
		}
	}
}

func TestGoldenKeys(t *testing.T) {
	g := loadGolden(t)
	if got := HWHash(g.Hardware); got != g.HWHash {
		t.Errorf("HWHash = %s, want %s", got, g.HWHash)
	}
	if got := NormEmail(g.Email); got != g.NormEmail {
		t.Errorf("NormEmail(%q) = %q, want %q", g.Email, got, g.NormEmail)
	}
	if g.NormEmail != "pilot.one@azaion.com" {
		t.Errorf("golden norm_email = %q", g.NormEmail)
	}
	if got := APIKey(g.Email, g.Password, g.Hardware); got != g.APIKey {
		t.Errorf("APIKey = %s, want %s", got, g.APIKey)
	}
	// norm applies inside APIKey: the normalized email gives the same key,
	// another password or hardware line does not.
	if got := APIKey(g.NormEmail, g.Password, g.Hardware); got != g.APIKey {
		t.Errorf("APIKey(norm email) = %s, want %s", got, g.APIKey)
	}
	if APIKey(g.Email, g.Password+" ", g.Hardware) == g.APIKey || APIKey(g.Email, g.Password, g.Hardware+" ") == g.APIKey {
		t.Error("APIKey ignores a change of password or hardware")
	}
}
