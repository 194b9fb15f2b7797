// Package aescbc decrypts AES-256-CBC. On amd64 with AES-NI and on arm64
// with the ARMv8 AES instructions it decrypts eight blocks at a time,
// interleaved, which Go's crypto/cipher does not: its CBC decrypter runs one
// AES decryption after the other, each waiting on the last (on arm64 Go has
// no CBC assembly at all), at about a fifth of what the instruction pipeline
// can do. CBC decryption has no chain between blocks (each plaintext block
// needs only its own and the previous ciphertext block), so the eight run at
// once. Elsewhere, and for keys other than 32 bytes, it is crypto/cipher's.
//
// Encryption stays with crypto/cipher: each CBC block needs the one before
// it, so no ordering of the instructions makes it faster.
package aescbc

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

// BlockSize is the AES block size.
const BlockSize = aes.BlockSize

// Block is an AES key ready for CBC decryption. It is a cipher.Block too.
type Block struct {
	cipher.Block
	dec *decKeys // nil: no fast path, crypto/cipher decrypts
}

// NewCipher returns the Block of key, which is 16, 24 or 32 bytes long.
func NewCipher(key []byte) (*Block, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aescbc: %w", err)
	}
	blk := &Block{Block: b}
	if fast && len(key) == 32 {
		blk.dec = expandDec256(key)
	}
	return blk, nil
}

// NewCBCDecrypter is cipher.NewCBCDecrypter for b: a BlockMode that decrypts
// CBC from iv, which is BlockSize bytes long (it is copied). As with
// crypto/cipher, CryptBlocks' dst and src overlap entirely or not at all.
func NewCBCDecrypter(b *Block, iv []byte) cipher.BlockMode {
	if b.dec == nil {
		return cipher.NewCBCDecrypter(b.Block, iv)
	}
	if len(iv) != BlockSize {
		panic("aescbc: IV length must equal block size")
	}
	d := &decrypter{keys: b.dec}
	copy(d.iv[:], iv)
	return d
}

type decrypter struct {
	keys *decKeys
	iv   [BlockSize]byte
}

func (d *decrypter) BlockSize() int { return BlockSize }

func (d *decrypter) CryptBlocks(dst, src []byte) {
	if len(src)%BlockSize != 0 {
		panic("aescbc: input not full blocks")
	}
	if len(dst) < len(src) {
		panic("aescbc: output smaller than input")
	}
	if len(src) == 0 {
		return
	}
	decryptCBC(d.keys, &d.iv, &dst[0], &src[0], len(src)/BlockSize)
}
