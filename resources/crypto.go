package resources

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/azaion/loader/resources/aescbc"
)

// BlockSize is the AES block size; the envelope is made of such blocks.
const BlockSize = aes.BlockSize

// AESKey is aes_key(secret) of PROTOCOL §1: the SHA-256 of the secret's bytes.
func AESKey(secret string) []byte {
	k := sha256.Sum256([]byte(secret))
	return k[:]
}

// NormEmail is norm(email): trimmed of surrounding white space and lower-cased.
func NormEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// HWHash is hw_hash(hardware).
func HWHash(hardware string) string {
	h := sha512.Sum384([]byte("azaion:hw:v1:" + hardware))
	return base64.StdEncoding.EncodeToString(h[:])
}

// APIKey is api_key(email, password, hardware): the secret that the Resource
// API encrypts a user's downloads with.
func APIKey(email, password, hardware string) string {
	h := sha512.Sum384([]byte("azaion:api:v1:" + NormEmail(email) + ":" + password + ":" + HWHash(hardware)))
	return base64.StdEncoding.EncodeToString(h[:])
}

// CipherLen is the length of encrypt(s, P) for a plaintext of plainLen bytes.
func CipherLen(plainLen int64) int64 {
	return BlockSize + BlockSize*(plainLen/BlockSize+1)
}

// Encrypt is encrypt(secret, plain) with a fresh random IV.
func Encrypt(secret string, plain []byte) ([]byte, error) {
	return EncryptKey(AESKey(secret), plain)
}

// EncryptKey is Encrypt with the AES key already derived.
func EncryptKey(key, plain []byte) ([]byte, error) {
	iv := make([]byte, BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("encrypt: iv: %w", err)
	}
	return encryptIV(key, iv, plain)
}

func encryptIV(key, iv, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	n := len(plain)
	pad := BlockSize - n%BlockSize
	out := make([]byte, BlockSize+n+pad)
	copy(out, iv)
	copy(out[BlockSize:], plain)
	for i := BlockSize + n; i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out[BlockSize:], out[BlockSize:])
	return out, nil
}

// Decrypt is decrypt(secret, c). It fails with ErrDecrypt when c is too short,
// not a whole number of blocks, or its padding is invalid.
func Decrypt(secret string, c []byte) ([]byte, error) {
	return DecryptKey(AESKey(secret), c)
}

// DecryptKey is Decrypt with the AES key already derived.
func DecryptKey(key, c []byte) ([]byte, error) {
	if len(c) < 2*BlockSize || len(c)%BlockSize != 0 {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrDecrypt, len(c))
	}
	block, err := aescbc.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	out := make([]byte, len(c)-BlockSize)
	aescbc.NewCBCDecrypter(block, c[:BlockSize]).CryptBlocks(out, c[BlockSize:])
	pad, err := padLen(out[len(out)-BlockSize:])
	if err != nil {
		return nil, err
	}
	return out[:len(out)-pad], nil
}

// padLen checks the PKCS#7 padding of the last plaintext block and returns
// its length.
func padLen(last []byte) (int, error) {
	n := int(last[BlockSize-1])
	if n < 1 || n > BlockSize {
		return 0, fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	var bad byte
	for _, b := range last[BlockSize-n:] {
		bad |= b ^ byte(n)
	}
	if bad != 0 {
		return 0, fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	return n, nil
}
