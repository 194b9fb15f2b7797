package resources

import "errors"

// Sentinel errors. Callers test them with errors.Is; the control API and the
// mount each map them to status codes and errnos in one place.
var (
	// ErrNotFound: the resource (its small part or its big part) does not exist.
	ErrNotFound = errors.New("no such resource")
	// ErrBadName: a folder or name that PROTOCOL §2 does not allow.
	ErrBadName = errors.New("bad resource name")
	// ErrNotLoggedIn: no credentials yet; log in with POST /login or the config.
	ErrNotLoggedIn = errors.New("not logged in")
	// ErrUnauthorized: the Resource API refused the credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the Resource API refused the call for this user (403).
	ErrForbidden = errors.New("forbidden")
	// ErrHardwareMismatch: the user is bound to another device (409).
	ErrHardwareMismatch = errors.New("hardware mismatch: the user is bound to another device")
	// ErrDecrypt: a ciphertext that does not decrypt (length or padding).
	ErrDecrypt = errors.New("decrypt failed")
	// ErrUpstream: the Resource API or the CDN failed or could not be reached.
	ErrUpstream = errors.New("upstream failure")
	// ErrTooLarge: an upload over the configured limit.
	ErrTooLarge = errors.New("too large")
)
