package control

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/azaion/loader/control/unlock"
	"github.com/azaion/loader/resources"
)

// credentials is the body of /login and /unlock.
type credentials struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

// readCredentials decodes the body of /login and /unlock, or answers the
// request with the error and reports false.
func readCredentials(w http.ResponseWriter, r *http.Request) (email, password string, ok bool) {
	var c credentials
	if err := readJSON(w, r, &c); err != nil {
		writeBodyError(w, err)
		return "", "", false
	}
	if c.Email == nil || strings.TrimSpace(*c.Email) == "" || c.Password == nil || *c.Password == "" {
		writeError(w, http.StatusUnprocessableEntity, "email and password are required")
		return "", "", false
	}
	return *c.Email, *c.Password, true
}

// loginTimeout bounds a whole login: the token and cdn.yaml.
const loginTimeout = 60 * time.Second

// login is flow F1. Every failure is a 401, as in the original loader, with
// a detail that says which step failed.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	email, password, ok := readCredentials(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), loginTimeout)
	defer cancel()
	if err := h.store.Login(ctx, email, password); err != nil {
		h.log.Warn("login failed", "email", logSafe(email, maxLogString), "err", err, "request_id", requestID(r))
		code := http.StatusUnauthorized
		if errors.Is(err, resources.ErrHardwareMismatch) {
			code = http.StatusConflict
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *handler) startUnlock(w http.ResponseWriter, r *http.Request) {
	if h.unlock == nil {
		writeError(w, http.StatusNotImplemented, "unlock is not configured on this loader")
		return
	}
	email, password, ok := readCredentials(w, r)
	if !ok {
		return
	}
	st, err := h.unlock.Start(context.WithoutCancel(r.Context()), email, password)
	if errors.Is(err, unlock.ErrArchiveMissing) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) unlockStatus(w http.ResponseWriter, r *http.Request) {
	if h.unlock == nil {
		writeJSON(w, http.StatusOK, unlock.Status{State: unlock.State("idle")})
		return
	}
	writeJSON(w, http.StatusOK, h.unlock.Status())
}
