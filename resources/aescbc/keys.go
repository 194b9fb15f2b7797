package aescbc

// decKeys is the AES-256 decryption key schedule of the equivalent inverse
// cipher (FIPS 197 §5.3.5), in the order the rounds use it: the last round
// key of the encryption schedule first, the first one last, the thirteen
// between them through InvMixColumns, each as AES-NI and arm64's VLD1 read
// it (the bytes of the words w[i] in order). AES-NI's AESDEC and arm64's
// AESD+AESIMC take the same schedule (see cbc_arm64.s).
type decKeys [15 * BlockSize]byte

// expandDec256 derives the decryption schedule of a 32-byte key.
func expandDec256(key []byte) *decKeys {
	var w [60][4]byte
	for i := range 8 {
		copy(w[i][:], key[4*i:])
	}
	rcon := byte(1)
	for i := 8; i < 60; i++ {
		t := w[i-1]
		switch i % 8 {
		case 0:
			t = [4]byte{sbox[t[1]] ^ rcon, sbox[t[2]], sbox[t[3]], sbox[t[0]]}
			rcon = xtime(rcon)
		case 4:
			t = [4]byte{sbox[t[0]], sbox[t[1]], sbox[t[2]], sbox[t[3]]}
		}
		for j := range 4 {
			w[i][j] = w[i-8][j] ^ t[j]
		}
	}
	var d decKeys
	for r := range 15 {
		for c := range 4 {
			col := w[4*(14-r)+c]
			if r > 0 && r < 14 {
				col = invMixColumn(col)
			}
			copy(d[r*BlockSize+4*c:], col[:])
		}
	}
	return &d
}

// xtime multiplies by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
func xtime(b byte) byte {
	if b&0x80 != 0 {
		return b<<1 ^ 0x1b
	}
	return b << 1
}

// mul multiplies in GF(2^8).
func mul(a, b byte) byte {
	var p byte
	for ; b != 0; b >>= 1 {
		if b&1 != 0 {
			p ^= a
		}
		a = xtime(a)
	}
	return p
}

func invMixColumn(s [4]byte) [4]byte {
	var o [4]byte
	m := [4]byte{0x0e, 0x0b, 0x0d, 0x09}
	for r := range 4 {
		for c := range 4 {
			o[r] ^= mul(m[(c-r+4)%4], s[c])
		}
	}
	return o
}

// sbox is AES's S-box, computed rather than written out: the multiplicative
// inverse in GF(2^8) (0 for 0) through the affine map of FIPS 197 §5.1.1.
var sbox = func() (s [256]byte) {
	for x := range 256 {
		var inv byte
		for y := 1; y < 256 && x != 0; y++ {
			if mul(byte(x), byte(y)) == 1 {
				inv = byte(y)
				break
			}
		}
		b := inv
		for i := 1; i <= 4; i++ {
			b ^= inv<<i | inv>>(8-i)
		}
		s[x] = b ^ 0x63
	}
	return s
}()
