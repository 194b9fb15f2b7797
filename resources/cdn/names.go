package cdn

import (
	"fmt"

	"github.com/azaion/loader/resources/names"
)

// The Store checks names first; this package checks again, with the same
// rule, so that nothing else ever becomes a key.
var (
	validName   = names.Valid
	validBucket = names.Bucket
	clip        = names.Clip
)

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
