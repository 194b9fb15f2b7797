//go:build arm64 && !purego

#include "textflag.h"

// The fifteen round keys stay in V16-V30 for the whole call, V31 holds the
// ciphertext block before the next one, V0-V7 the blocks being decrypted.
//
// AESD is AddRoundKey, InvShiftRows and InvSubBytes; AESIMC is
// InvMixColumns. So AESD with keys 0..13, AESIMC after all but the last,
// and an XOR with key 14 make the rounds of AES-NI's AESDEC sequence, with
// the same schedule (keys.go). Each AESIMC follows its AESD on the same
// register, the pair that ARMv8 cores fuse into one operation.

// One round on the eight blocks in V0-V7 with the round key in K.
#define ROUND8(K) \
	AESD   K.B16, V0.B16 \
	AESIMC V0.B16, V0.B16 \
	AESD   K.B16, V1.B16 \
	AESIMC V1.B16, V1.B16 \
	AESD   K.B16, V2.B16 \
	AESIMC V2.B16, V2.B16 \
	AESD   K.B16, V3.B16 \
	AESIMC V3.B16, V3.B16 \
	AESD   K.B16, V4.B16 \
	AESIMC V4.B16, V4.B16 \
	AESD   K.B16, V5.B16 \
	AESIMC V5.B16, V5.B16 \
	AESD   K.B16, V6.B16 \
	AESIMC V6.B16, V6.B16 \
	AESD   K.B16, V7.B16 \
	AESIMC V7.B16, V7.B16

#define LAST8(K, L) \
	AESD K.B16, V0.B16 \
	AESD K.B16, V1.B16 \
	AESD K.B16, V2.B16 \
	AESD K.B16, V3.B16 \
	AESD K.B16, V4.B16 \
	AESD K.B16, V5.B16 \
	AESD K.B16, V6.B16 \
	AESD K.B16, V7.B16 \
	VEOR L.B16, V0.B16, V0.B16 \
	VEOR L.B16, V1.B16, V1.B16 \
	VEOR L.B16, V2.B16, V2.B16 \
	VEOR L.B16, V3.B16, V3.B16 \
	VEOR L.B16, V4.B16, V4.B16 \
	VEOR L.B16, V5.B16, V5.B16 \
	VEOR L.B16, V6.B16, V6.B16 \
	VEOR L.B16, V7.B16, V7.B16

#define ROUND1(K) \
	AESD   K.B16, V0.B16 \
	AESIMC V0.B16, V0.B16

// func decryptCBC(k *decKeys, iv *[BlockSize]byte, dst, src *byte, n int)
TEXT ·decryptCBC(SB), NOSPLIT, $0-40
	MOVD k+0(FP), R0
	MOVD iv+8(FP), R1
	MOVD dst+16(FP), R2
	MOVD src+24(FP), R3
	MOVD n+32(FP), R4

	VLD1.P 64(R0), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R0), [V20.B16, V21.B16, V22.B16, V23.B16]
	VLD1.P 64(R0), [V24.B16, V25.B16, V26.B16, V27.B16]
	VLD1   (R0), [V28.B16, V29.B16, V30.B16]
	VLD1   (R1), [V31.B16]

loop8:
	CMP  $8, R4
	BLT  loop1
	MOVD R3, R5
	VLD1.P 64(R5), [V0.B16, V1.B16, V2.B16, V3.B16]
	VLD1.P 64(R5), [V4.B16, V5.B16, V6.B16, V7.B16]
	ROUND8(V16)
	ROUND8(V17)
	ROUND8(V18)
	ROUND8(V19)
	ROUND8(V20)
	ROUND8(V21)
	ROUND8(V22)
	ROUND8(V23)
	ROUND8(V24)
	ROUND8(V25)
	ROUND8(V26)
	ROUND8(V27)
	ROUND8(V28)
	LAST8(V29, V30)

	// Every load from src comes before the first store to dst, so that
	// dst may be src itself.
	VEOR   V31.B16, V0.B16, V0.B16
	VLD1.P 64(R3), [V8.B16, V9.B16, V10.B16, V11.B16]
	VEOR   V8.B16, V1.B16, V1.B16
	VEOR   V9.B16, V2.B16, V2.B16
	VEOR   V10.B16, V3.B16, V3.B16
	VEOR   V11.B16, V4.B16, V4.B16
	VLD1.P 64(R3), [V12.B16, V13.B16, V14.B16, V15.B16]
	VEOR   V12.B16, V5.B16, V5.B16
	VEOR   V13.B16, V6.B16, V6.B16
	VEOR   V14.B16, V7.B16, V7.B16
	VMOV   V15.B16, V31.B16
	VST1.P [V0.B16, V1.B16, V2.B16, V3.B16], 64(R2)
	VST1.P [V4.B16, V5.B16, V6.B16, V7.B16], 64(R2)
	SUB  $8, R4
	B    loop8

loop1:
	CBZ    R4, done
	VLD1.P 16(R3), [V8.B16]
	VMOV   V8.B16, V0.B16
	ROUND1(V16)
	ROUND1(V17)
	ROUND1(V18)
	ROUND1(V19)
	ROUND1(V20)
	ROUND1(V21)
	ROUND1(V22)
	ROUND1(V23)
	ROUND1(V24)
	ROUND1(V25)
	ROUND1(V26)
	ROUND1(V27)
	ROUND1(V28)
	AESD   V29.B16, V0.B16
	VEOR   V30.B16, V0.B16, V0.B16
	VEOR   V31.B16, V0.B16, V0.B16
	VMOV   V8.B16, V31.B16
	VST1.P [V0.B16], 16(R2)
	SUB    $1, R4
	B      loop1

done:
	VST1 [V31.B16], (R1)
	RET
