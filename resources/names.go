package resources

import (
	"fmt"

	"github.com/azaion/loader/resources/names"
)

// ValidName reports whether s is a folder or resource name of PROTOCOL §2:
// 1..200 bytes of letters, digits, '.', '_', '-', not starting with '.'.
func ValidName(s string) bool { return names.Valid(s) }

// ValidBucket reports whether folder can also be an S3 bucket name, as the
// bucket-per-folder layout of PROTOCOL §4 needs.
func ValidBucket(folder string) bool { return names.Bucket(folder) }

// CheckNames returns an ErrBadName error unless both folder and name are valid.
func CheckNames(folder, name string) error {
	if !ValidName(folder) {
		return fmt.Errorf("%w: folder %q", ErrBadName, clip(folder))
	}
	if !ValidName(name) {
		return fmt.Errorf("%w: name %q", ErrBadName, clip(name))
	}
	return nil
}

func clip(s string) string { return names.Clip(s) }
