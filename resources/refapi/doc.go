// Package refapi owns the reference Azaion Resource API server: the HTTP side
// of PROTOCOL §3 (login and its HS256 tokens, encrypted downloads with the
// per-user hardware binding, multipart uploads, the key fragment), with
// stored files kept under one data directory.
//
// It stands in for the real Resource API in tests and in the demo, so it is
// strict: it answers every request the protocol does not allow with a 4xx
// and a JSON {"message": "..."}, never a 500, and it never touches a file
// outside its data directory.
//
// Checks on POST /resources/get/{folder} run in this order, and the first
// that fails answers:
//
//	401 token missing, malformed, not HS256, badly signed, expired, or its user unknown
//	400 wrong content type, body not one JSON object, a field missing or empty,
//	    or a folder or file name that PROTOCOL §2 does not allow
//	403 the password is not the token user's
//	409 the user is bound to other hardware
//	404 no such file
//
// A 409 comes before a 404 so that a device that is not the user's learns
// nothing about which files exist. A get binds the user to its hardware only
// when it succeeds. The empty folder holds only cdn.yaml: any other name in it
// is a 400.
package refapi
