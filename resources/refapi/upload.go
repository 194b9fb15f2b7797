package refapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
)

// upload is POST /resources/{folder}: multipart/form-data with exactly one
// part, a file part named "data" whose filename is the stored name. Checks:
// 401 token, 403 role (UploadRoles), 400 content type, folder, parts or
// names, 413 body over MaxUpload; then 200 {}. The file becomes visible only
// when the whole body has been read and found good.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	s.count(RouteUpload)
	u, _, ok := s.auth(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "token missing, invalid or expired")
		return
	}
	if s.uploadRoles != nil && !s.uploadRoles[u.Role] {
		writeError(w, http.StatusForbidden, "this user may not upload")
		return
	}
	folder, ok := pathFolder(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad folder")
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		writeError(w, http.StatusBadRequest, "content type must be multipart/form-data")
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.maxUpload)
	mr := multipart.NewReader(body, params["boundary"])
	var file *staged
	var name string
	defer func() {
		if file != nil {
			file.abort()
		}
	}()
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.bodyError(w, fmt.Errorf("%w: %w", errBadBody, err))
			return
		}
		fieldName, fileName, ok := disposition(part)
		if !ok || fieldName != "data" || file != nil {
			writeError(w, http.StatusBadRequest, "want exactly one file part named data")
			return
		}
		if !validFolderName(folder, fileName) {
			writeError(w, http.StatusBadRequest, "bad folder or file name")
			return
		}
		file, err = s.store.stage(folder, fileName, part)
		if err != nil {
			s.bodyError(w, err)
			return
		}
		name = fileName
	}
	if file == nil {
		writeError(w, http.StatusBadRequest, "want exactly one file part named data")
		return
	}
	err = file.commit()
	file = nil
	if err != nil {
		s.log.Error("upload", "folder", folder, "name", name, "err", err)
		writeError(w, http.StatusInternalServerError, "cannot store the file")
		return
	}
	s.log.Info("upload", "user", u.ID, "folder", folder, "name", name)
	if fn := s.onStored.Load(); fn != nil {
		(*fn)(folder, name)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// disposition reads a part's form-data name and filename as sent. It does
// not use Part.FileName, which would quietly turn "../x" into "x".
func disposition(p *multipart.Part) (name, fileName string, ok bool) {
	d, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil || d != "form-data" {
		return "", "", false
	}
	fileName, ok = params["filename"]
	return params["name"], fileName, ok
}

// bodyError answers a failure while reading the upload's body: 413 over the
// limit, 400 for a malformed body, 500 for the disk.
func (s *Server) bodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errTooLarge) || errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "upload too large")
	case errors.Is(err, errBadBody):
		writeError(w, http.StatusBadRequest, "malformed multipart body")
	default:
		s.log.Error("upload", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot store the file")
	}
}
