package cdn

import "fmt"

// validName is PROTOCOL §2 for a folder or name: 1..255 bytes of letters,
// digits, '.', '_', '-', not starting with '.'. The Store checks names first;
// this package checks again so that nothing else ever becomes a key.
func validName(s string) bool {
	if len(s) < 1 || len(s) > 255 || s[0] == '.' {
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

// validBucket is an S3 bucket name as PROTOCOL §4 allows: 3..63 bytes of
// lower-case letters, digits, '.' and '-', and a valid name.
func validBucket(s string) bool {
	if len(s) < 3 || len(s) > 63 || !validName(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// clip keeps error messages short when a caller sends a huge name.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// checkFolder refuses a folder this layout cannot hold, before any network call.
func (c *Client) checkFolder(folder string) error {
	if !validName(folder) {
		return fmt.Errorf("%w: folder %q", ErrBadName, clip(folder))
	}
	if c.cfg.Bucket == "" && !validBucket(folder) {
		return fmt.Errorf("folder %q: %w", clip(folder), ErrBadFolder)
	}
	return nil
}

// locate checks folder and name and returns where the big part lives.
func (c *Client) locate(folder, name string) (bucket, key string, err error) {
	if err := c.checkFolder(folder); err != nil {
		return "", "", err
	}
	if !validName(name) {
		return "", "", fmt.Errorf("%w: name %q", ErrBadName, clip(name))
	}
	bucket, key = c.Key(folder, name)
	return bucket, key, nil
}
