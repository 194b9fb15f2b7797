//go:build !(amd64 || arm64) || purego

package aescbc

const fast = false

func decryptCBC(k *decKeys, iv *[BlockSize]byte, dst, src *byte, n int) {
	panic("aescbc: no fast path on this platform")
}
