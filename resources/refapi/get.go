package refapi

import (
	"errors"
	"io/fs"
	"net/http"

	"github.com/azaion/loader/resources"
)

type getRequest struct {
	FileName *string `json:"fileName"`
	Password *string `json:"password"`
	Hardware *string `json:"hardware"`
}

// get is POST /resources/get/{folder}; the package doc gives the order of
// its checks.
func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.count(RouteGet)
	u, c, ok := s.auth(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "token missing, invalid or expired")
		return
	}
	folder, ok := pathFolder(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad folder")
		return
	}
	var req getRequest
	if e := readJSON(w, r, &req); e != nil {
		writeError(w, e.code, e.msg)
		return
	}
	if req.FileName == nil || req.Password == nil || req.Hardware == nil || *req.Password == "" || *req.Hardware == "" {
		writeError(w, http.StatusBadRequest, "fileName, password and hardware are required")
		return
	}
	name := *req.FileName
	if !validFolderName(folder, name) {
		writeError(w, http.StatusBadRequest, "bad folder or file name")
		return
	}
	if !equal(u.Password, *req.Password) {
		writeError(w, http.StatusForbidden, "password is not the token user's")
		return
	}
	hw := resources.HWHash(*req.Hardware)
	if s.boundElsewhere(u.ID, hw) {
		s.log.Info("hardware mismatch", "user", u.ID)
		writeError(w, http.StatusConflict, "hardware mismatch")
		return
	}
	data, err := s.store.get(folder, name)
	if errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, "no such file")
		return
	}
	if err != nil {
		s.log.Error("get", "folder", folder, "name", name, "err", err)
		writeError(w, http.StatusInternalServerError, "cannot read the file")
		return
	}
	if !s.bind(u.ID, hw) {
		writeError(w, http.StatusConflict, "hardware mismatch")
		return
	}
	out, err := resources.Encrypt(resources.APIKey(c.Email, *req.Password, *req.Hardware), data)
	if err != nil {
		s.log.Error("get: encrypt", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot encrypt")
		return
	}
	s.log.Info("get", "user", u.ID, "folder", folder, "name", name, "bytes", len(data))
	writeBytes(w, out)
}

// boundElsewhere reports whether the user is bound to other hardware.
func (s *Server) boundElsewhere(id, hw string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bindings[id]
	return ok && b != hw
}

// bind binds an unbound user to hw; false when another call bound the user
// to other hardware first.
func (s *Server) bind(id, hw string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bindings[id]
	if !ok {
		s.bindings[id] = hw
		return true
	}
	return b == hw
}

// keyFragment is GET /binary-split/key-fragment.
func (s *Server) keyFragment(w http.ResponseWriter, r *http.Request) {
	s.count(RouteKeyFragment)
	if _, _, ok := s.auth(r); !ok {
		writeError(w, http.StatusUnauthorized, "token missing, invalid or expired")
		return
	}
	writeBytes(w, s.fragment)
}
