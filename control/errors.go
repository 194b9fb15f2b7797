package control

import (
	"context"
	"errors"
	"net/http"

	"github.com/azaion/loader/resources"
)

// statusOf maps an error from the Store to the control API's status code, in
// this one place.
func statusOf(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, resources.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, resources.ErrBadName), errors.Is(err, errBadBody):
		return http.StatusBadRequest
	case errors.Is(err, resources.ErrForbidden):
		// The Resource API refused this user the call (an upload by a role
		// that may not upload): the same answer, not a 401 that asks for
		// a login the user already has.
		return http.StatusForbidden
	case errors.Is(err, resources.ErrNotLoggedIn),
		errors.Is(err, resources.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, resources.ErrHardwareMismatch):
		return http.StatusConflict
	case errors.Is(err, resources.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, resources.ErrUpstream),
		errors.Is(err, resources.ErrDecrypt),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// fail answers with err's status and a detail that names what went wrong.
// Errors of the Store never carry secrets, so their text is the detail.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	code := statusOf(err)
	detail := err.Error()
	if errors.Is(err, resources.ErrNotLoggedIn) {
		detail = "not logged in: POST /login first"
	}
	if code >= 500 {
		h.log.Error(op+" failed", "err", err, "request_id", requestID(r))
	}
	writeError(w, code, detail)
}
