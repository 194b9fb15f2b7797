// Package names holds the one rule of PROTOCOL §2 for folder and resource
// names, and §4's for folders that are also buckets. It imports nothing, so
// that the Store and the clients beneath it (cdn, cache) check names alike.
package names

// MaxLen is the longest folder or resource name (PROTOCOL §2): it leaves
// room for the ".small", ".big", staging and cache suffixes within every
// store's 255-byte limit.
const MaxLen = 200

// maxFile is the longest stored file name: a name and its suffix.
const maxFile = 255

// Valid reports whether s is a folder or resource name of PROTOCOL §2:
// 1..200 bytes of letters, digits, '.', '_', '-', not starting with '.'.
func Valid(s string) bool { return len(s) <= MaxLen && File(s) }

// File reports whether s is a stored file name: a name of PROTOCOL §2 with
// its suffix (model.onnx.small), so up to 255 bytes.
func File(s string) bool {
	if len(s) < 1 || len(s) > maxFile || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Bucket reports whether folder can also be an S3 bucket name, as the
// bucket-per-folder layout of PROTOCOL §4 needs: 3..63 bytes of lower-case
// letters, digits, '.' and '-'.
func Bucket(folder string) bool {
	if len(folder) < 3 || len(folder) > 63 || !Valid(folder) {
		return false
	}
	for i := 0; i < len(folder); i++ {
		c := folder[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Clip keeps error messages short when a caller sends a huge name.
func Clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
