//go:build arm64 && !purego

package aescbc

import "golang.org/x/sys/cpu"

// fast is whether this CPU has the ARMv8 Cryptographic Extension's AES
// instructions (the NEON registers the rest uses are part of arm64).
var fast = cpu.ARM64.HasAES

// decryptCBC decrypts n blocks of src into dst with the schedule k and the
// chaining block iv, and leaves the last ciphertext block in iv.
//
//go:noescape
func decryptCBC(k *decKeys, iv *[BlockSize]byte, dst, src *byte, n int)
