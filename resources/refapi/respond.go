package refapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"message": msg}. msg never holds a secret.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"message": msg})
}

// writeBytes answers 200 application/octet-stream.
func writeBytes(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// errBody is a request body that readJSON refuses; code is its status.
type errBody struct {
	code int
	msg  string
}

// readJSON decodes a body that must be exactly one JSON object of at most
// maxJSON bytes, sent as application/json. Unknown fields are ignored, as a
// JSON API does; a missing field is left for the caller to find.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *errBody {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &errBody{http.StatusBadRequest, "content type must be application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSON))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return &errBody{http.StatusBadRequest, "malformed JSON: data after the object"}
	}
	return nil
}

func jsonError(err error) *errBody {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &errBody{http.StatusRequestEntityTooLarge, "body too large"}
	}
	return &errBody{http.StatusBadRequest, "malformed JSON"}
}

// pathFolder is the folder of /resources/{folder} and /resources/get/{folder},
// unescaped. It is not yet validated: "a/b" and ".." come back as they are.
func pathFolder(r *http.Request) (string, bool) {
	folder := chi.URLParam(r, "*")
	if r.URL.RawPath == "" || !strings.Contains(folder, "%") {
		return folder, true
	}
	// chi routed on the escaped path; the folder is still escaped.
	f, err := url.PathUnescape(folder)
	return f, err == nil
}
