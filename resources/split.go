package resources

// MaxSmallLen is the largest small part: 3 KB.
const MaxSmallLen = 3072

// SmallLen is small_len of PROTOCOL §2 for a ciphertext of n bytes:
// min(3072, floor(n*3/10)).
func SmallLen(n int64) int64 {
	if n >= 10240 {
		return MaxSmallLen // and n*3 cannot overflow below
	}
	return min(MaxSmallLen, n*3/10)
}

// Split cuts a whole ciphertext into its small and big parts.
func Split(c []byte) (small, big []byte) {
	k := SmallLen(int64(len(c)))
	return c[:k], c[k:]
}

// SmallLenForPlain is the small part's length for a plaintext of n bytes.
// From a ciphertext of 10240 bytes (a plaintext of 10208) on it is always 3072,
// so an upload can stream once it has seen that many plaintext bytes.
func SmallLenForPlain(n int64) int64 {
	return SmallLen(CipherLen(n))
}
