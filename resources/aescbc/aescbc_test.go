package aescbc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"os"
	"testing"
)

// The S-box's known entries (FIPS 197 Figure 7) and a key schedule's known
// last round key (FIPS 197 Appendix A.3) pin the pure Go key expansion.
func TestKeySchedule(t *testing.T) {
	if sbox[0x00] != 0x63 || sbox[0x53] != 0xed || sbox[0xff] != 0x16 {
		t.Fatalf("sbox[00,53,ff] = %02x %02x %02x, want 63 ed 16", sbox[0x00], sbox[0x53], sbox[0xff])
	}
	key := []byte{
		0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
		0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
	}
	// w[56..59] = fe4890d1 e6188d0b 046df344 706c631e
	want := []byte{0xfe, 0x48, 0x90, 0xd1, 0xe6, 0x18, 0x8d, 0x0b, 0x04, 0x6d, 0xf3, 0x44, 0x70, 0x6c, 0x63, 0x1e}
	if d := expandDec256(key); !bytes.Equal(d[:BlockSize], want) {
		t.Fatalf("last round key = %x, want %x", d[:BlockSize], want)
	}
}

// requireFast fails the test where AESCBC_REQUIRE_FAST=1 (the arm64 run
// under qemu sets it) and the fast path is off: there the tests would
// compare crypto/cipher with itself and pass whatever the assembly does.
func requireFast(t testing.TB) {
	if fast {
		return
	}
	if os.Getenv("AESCBC_REQUIRE_FAST") == "1" {
		t.Fatal("AESCBC_REQUIRE_FAST=1 but this CPU has no AES instructions for the fast path")
	}
	t.Log("no AES instructions here: this compares crypto/cipher with itself")
}

// Every length from 0 to 40 blocks, and some long ones, in place and not,
// in one call and cut into several calls that carry the IV on, and at every
// address mod 16 up to 257 blocks, against crypto/cipher, for many keys.
func TestMatchesCryptoCipher(t *testing.T) {
	requireFast(t)
	cc := rand.NewChaCha8([32]byte{7})
	rng := rand.New(cc)
	lengths := []int{}
	for n := range 41 {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 255, 256, 257, 4096, 65536+3)
	for k := range 20 {
		key, iv := make([]byte, 32), make([]byte, BlockSize)
		cc.Read(key)
		cc.Read(iv)
		ref, _ := aes.NewCipher(key)
		blk, err := NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		if fast && blk.dec == nil {
			t.Fatal("the CPU has the AES instructions but the fast path is off")
		}
		for _, n := range lengths {
			src := make([]byte, n*BlockSize)
			cc.Read(src)
			want := make([]byte, len(src))
			cipher.NewCBCDecrypter(ref, iv).CryptBlocks(want, src)

			got := make([]byte, len(src))
			NewCBCDecrypter(blk, iv).CryptBlocks(got, src)
			if !bytes.Equal(got, want) {
				t.Fatalf("key %d, %d blocks: out of place differs", k, n)
			}
			inPlace := bytes.Clone(src)
			NewCBCDecrypter(blk, iv).CryptBlocks(inPlace, inPlace)
			if !bytes.Equal(inPlace, want) {
				t.Fatalf("key %d, %d blocks: in place differs", k, n)
			}
			// Slices at every address mod 16, each of src and dst
			// on its own, and in place.
			for off := 1; off < BlockSize && n <= 257; off++ {
				usrc := make([]byte, off+len(src))[off:]
				copy(usrc, src)
				udst := make([]byte, BlockSize-off+len(src))[BlockSize-off:]
				NewCBCDecrypter(blk, iv).CryptBlocks(udst, usrc)
				if !bytes.Equal(udst, want) {
					t.Fatalf("key %d, %d blocks, src at +%d, dst at +%d: differs", k, n, off, BlockSize-off)
				}
				NewCBCDecrypter(blk, iv).CryptBlocks(usrc, usrc)
				if !bytes.Equal(usrc, want) {
					t.Fatalf("key %d, %d blocks, in place at +%d: differs", k, n, off)
				}
			}
			pieces := make([]byte, len(src))
			d := NewCBCDecrypter(blk, iv)
			for off := 0; off < len(src); {
				step := min(len(src)-off, BlockSize*(1+rng.IntN(11)))
				d.CryptBlocks(pieces[off:off+step], src[off:off+step])
				off += step
			}
			if !bytes.Equal(pieces, want) {
				t.Fatalf("key %d, %d blocks: in pieces differs", k, n)
			}
		}
	}
}

func TestOtherKeySizes(t *testing.T) {
	for _, n := range []int{16, 24} {
		key, iv, src := make([]byte, n), make([]byte, BlockSize), make([]byte, 20*BlockSize)
		for i := range src {
			src[i] = byte(i)
		}
		ref, _ := aes.NewCipher(key)
		want := make([]byte, len(src))
		cipher.NewCBCDecrypter(ref, iv).CryptBlocks(want, src)
		blk, err := NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(src))
		NewCBCDecrypter(blk, iv).CryptBlocks(got, src)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d-byte key: differs from crypto/cipher", n)
		}
	}
	if _, err := NewCipher(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
}

func TestPanics(t *testing.T) {
	blk, _ := NewCipher(make([]byte, 32))
	for name, f := range map[string]func(){
		"short iv":     func() { NewCBCDecrypter(blk, make([]byte, 15)) },
		"partial":      func() { NewCBCDecrypter(blk, make([]byte, 16)).CryptBlocks(make([]byte, 32), make([]byte, 17)) },
		"small output": func() { NewCBCDecrypter(blk, make([]byte, 16)).CryptBlocks(make([]byte, 16), make([]byte, 32)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// FuzzMatchesCryptoCipher takes the key, the IV and the ciphertext from one
// input: 32 bytes, 16 bytes, and the whole blocks after them.
func FuzzMatchesCryptoCipher(f *testing.F) {
	f.Add(make([]byte, 48+160))
	f.Add(bytes.Repeat([]byte{0xa5}, 48+16*9))
	requireFast(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 48 {
			return
		}
		key, iv, src := in[:32], in[32:48], in[48:]
		src = src[:len(src)&^(BlockSize-1)]
		ref, _ := aes.NewCipher(key)
		want := make([]byte, len(src))
		cipher.NewCBCDecrypter(ref, iv).CryptBlocks(want, src)
		blk, _ := NewCipher(key)
		got := bytes.Clone(src)
		NewCBCDecrypter(blk, iv).CryptBlocks(got, got)
		if !bytes.Equal(got, want) {
			t.Fatalf("differs from crypto/cipher")
		}
	})
}

func benchmarkDecrypt(b *testing.B, mode func(iv []byte) cipher.BlockMode) {
	buf := make([]byte, 1<<20)
	iv := make([]byte, BlockSize)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		mode(iv).CryptBlocks(buf, buf)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	key := make([]byte, 32)
	blk, _ := NewCipher(key)
	ref, _ := aes.NewCipher(key)
	b.Run("aescbc", func(b *testing.B) {
		benchmarkDecrypt(b, func(iv []byte) cipher.BlockMode { return NewCBCDecrypter(blk, iv) })
	})
	b.Run("crypto-cipher", func(b *testing.B) {
		benchmarkDecrypt(b, func(iv []byte) cipher.BlockMode { return cipher.NewCBCDecrypter(ref, iv) })
	})
}
