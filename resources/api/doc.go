// Package api owns the client of the Azaion Resource API (PROTOCOL §3): it
// logs in, keeps the session's token fresh, and makes the calls that fetch
// encrypted files, upload files and fetch the key fragment.
//
// The client re-logs in before the token's exp (when less than
// min(30s, 10% of the token's lifetime) remains) and, on any 401 or 403, logs
// in again and retries the call exactly once. Concurrent callers share one
// re-login.
//
// Errors: an HTTP answer that is not 2xx is a *StatusError with its Code;
// a call that got no usable answer (connection refused, timeout, a body over
// the size limit, an unreadable token) is a *StatusError with Code 0 whose
// Err is the cause. A call before a successful Login is ErrNotLoggedIn.
// Errors never hold the password, the token or a downloaded body.
//
// The package does not import the resources package: the Store there maps
// codes to its own errors (401 unauthorized, 403 forbidden, 404 not found,
// 409 hardware mismatch, 0 and 5xx upstream).
package api
