//go:build amd64 && !purego

package aescbc

import "golang.org/x/sys/cpu"

// fast is whether this CPU has AES-NI (SSE2, which the rest uses, is part of amd64).
var fast = cpu.X86.HasAES

// decryptCBC decrypts n blocks of src into dst with the schedule k and the
// chaining block iv, and leaves the last ciphertext block in iv.
//
//go:noescape
func decryptCBC(k *decKeys, iv *[BlockSize]byte, dst, src *byte, n int)
