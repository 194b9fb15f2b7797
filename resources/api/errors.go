package api

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotLoggedIn is returned by calls made before a successful Login.
var ErrNotLoggedIn = errors.New("api: not logged in")

// StatusError is a failed call: Code is the HTTP status, or 0 when there was
// no usable answer (then Err is the cause). Message is the server's message,
// for people only; never branch on it.
type StatusError struct {
	Op      string
	Code    int
	Message string
	Err     error
}

func (e *StatusError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("api %s: %v", e.Op, e.Err)
	}
	if e.Message == "" {
		return fmt.Sprintf("api %s: status %d", e.Op, e.Code)
	}
	return fmt.Sprintf("api %s: status %d: %s", e.Op, e.Code, e.Message)
}

// Unwrap gives the cause of a Code 0 error.
func (e *StatusError) Unwrap() error { return e.Err }

// maxMessage bounds the server message kept in an error.
const maxMessage = 200

// statusError builds the error of a non-2xx answer from its JSON body
// {"message": "..."}; any other body is dropped.
func statusError(op string, code int, body []byte) *StatusError {
	var m struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &m)
	msg := m.Message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	return &StatusError{Op: op, Code: code, Message: msg}
}

// noAnswer wraps a transport failure.
func noAnswer(op string, err error) *StatusError {
	return &StatusError{Op: op, Err: err}
}
