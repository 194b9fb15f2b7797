package refapi

import (
	"crypto/subtle"
	"net/http"

	"github.com/azaion/loader/resources"
)

type loginRequest struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

// login is POST /login: 400 malformed, 401 wrong email or password,
// 200 {"token": jwt}.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	s.count(RouteLogin)
	var req loginRequest
	if e := readJSON(w, r, &req); e != nil {
		writeError(w, e.code, e.msg)
		return
	}
	if req.Email == nil || req.Password == nil || resources.NormEmail(*req.Email) == "" || *req.Password == "" {
		writeError(w, http.StatusBadRequest, "email and password are required")
		return
	}
	u := s.byEmail[resources.NormEmail(*req.Email)]
	if u == nil || !equal(u.Password, *req.Password) {
		s.log.Info("login refused", "route", RouteLogin)
		writeError(w, http.StatusUnauthorized, "wrong email or password")
		return
	}
	tok, err := s.issue(u)
	if err != nil {
		s.log.Error("login", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot issue a token")
		return
	}
	s.log.Info("login", "user", u.ID)
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// equal compares secrets in constant time.
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
