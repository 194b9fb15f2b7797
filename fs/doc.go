// Package fs owns the read-only FUSE mount of PROTOCOL §7: it shows every
// resource the store knows as <mount>/<folder>/<name>, with its plaintext
// bytes and exact plaintext size, refuses every write with EROFS, and maps
// store errors to errnos in one place (Errno).
//
// It knows nothing of S3, JWTs or CBC: it asks a Store, the small interface
// it needs from resources.Store, and reads through Resource.ReadAt with each
// FUSE request's context, bounded by Options.ReadTimeout.
package fs
