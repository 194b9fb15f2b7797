package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// maxJSONBytes bounds every JSON request body.
const maxJSONBytes = 64 << 10

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with the original loader's error shape, {"detail": ...}.
func writeError(w http.ResponseWriter, code int, detail string) {
	writeJSON(w, code, map[string]string{"detail": detail})
}

// errBody is a request body that is not the JSON object a call takes; its
// code is 400 for bytes that are not JSON and 422 for JSON that lacks a field,
// as FastAPI answered.
type errBody struct {
	code int
	msg  string
}

func (e *errBody) Error() string { return e.msg }

// readJSON decodes a bounded JSON object body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &errBody{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &errBody{http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxJSONBytes)}
		}
		if errors.Is(err, errBodyTimeout) {
			return &errBody{http.StatusRequestTimeout, err.Error()}
		}
		return &errBody{http.StatusBadRequest, "body is not a JSON object: " + jsonProblem(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		if errors.Is(err, errBodyTimeout) {
			return &errBody{http.StatusRequestTimeout, err.Error()}
		}
		return &errBody{http.StatusBadRequest, "body holds more than one JSON value"}
	}
	return nil
}

// jsonProblem describes a decode error without echoing the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated"
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
	}
	return "malformed"
}

func writeBodyError(w http.ResponseWriter, err error) {
	var eb *errBody
	if errors.As(err, &eb) {
		writeError(w, eb.code, eb.msg)
		return
	}
	writeError(w, http.StatusBadRequest, "bad request body")
}
