package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/azaion/loader/resources"
)

// upload is flow F3. The multipart body is read as a stream: the folder
// field must come before the file part, as browsers, curl -F in that order,
// and Python's requests (data before files) send them.
func (h *handler) upload(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r)
	if err != nil {
		h.fail(w, r, "upload", err)
		return
	}
	h.uploadRate(r)
	r.Body = http.MaxBytesReader(w, r.Body, h.maxUpload)
	mr, err := multipartReader(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "body must be multipart/form-data with a folder field and a file part")
		return
	}
	var folder string
	uploaded := false
parts:
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			h.fail(w, r, "upload", bodyError(err))
			return
		}
		switch part.FormName() {
		case "folder":
			b, err := io.ReadAll(io.LimitReader(part, 256))
			if err != nil {
				h.fail(w, r, "upload", bodyError(err))
				return
			}
			folder = string(b)
			if !resources.ValidName(folder) {
				h.fail(w, r, "upload", fmt.Errorf("%w: folder %q", resources.ErrBadName, clip(folder)))
				return
			}
		case "file":
			if err := checkPartFilename(part.Header.Get("Content-Disposition")); err != nil {
				h.fail(w, r, "upload", err)
				return
			}
			if folder == "" {
				writeError(w, http.StatusBadRequest, "the folder field must come before the file part")
				return
			}
			// The rest of the body is read before the file part's end
			// reaches the Store: a second file part fails the upload
			// before anything is published.
			body := &partReader{r: &lastPart{part: part, mr: mr}}
			if _, err := h.store.Upload(r.Context(), folder, name, body); err != nil {
				if body.err != nil {
					// The client's body broke off or went over the limit.
					err = bodyError(body.err)
				}
				h.fail(w, r, "upload", err)
				return
			}
			uploaded = true
			break parts // lastPart read the body to its end
		default:
			io.Copy(io.Discard, io.LimitReader(part, 1<<20))
		}
	}
	if !uploaded {
		writeError(w, http.StatusUnprocessableEntity, "a file part is required")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// bodyBuffer is the read buffer under an upload's multipart reader.
const bodyBuffer = 256 << 10

// multipartReader is r.MultipartReader with a larger buffer under it:
// mime/multipart reads its source 4 KiB at a time, which made an upload one
// read system call (and one read deadline) per 4 KiB of the body.
func multipartReader(r *http.Request) (*multipart.Reader, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, http.ErrNotMultipart
	}
	return multipart.NewReader(bufio.NewReaderSize(r.Body, bodyBuffer), params["boundary"]), nil
}

// checkPartFilename refuses a file part whose raw filename is not a valid
// name (Go's Part.FileName would hide a traversal by taking its base).
func checkPartFilename(disposition string) error {
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return fmt.Errorf("%w: bad Content-Disposition of the file part", resources.ErrBadName)
	}
	if fn, ok := params["filename"]; ok && fn != "" && !resources.ValidName(fn) {
		return fmt.Errorf("%w: file part filename %q", resources.ErrBadName, clip(fn))
	}
	return nil
}

// errTwoFiles is an upload with more than one file part: refused before
// anything is stored, since the first is not published until the body ends.
var errTwoFiles = errors.New("more than one file part")

// lastPart reads the file part of an upload and, at its end, the rest of
// the body: it returns io.EOF only once the body has ended with no other
// file part (fields after it are skipped, as before it), else the error
// that ends the upload.
type lastPart struct {
	part io.Reader
	mr   *multipart.Reader
	done bool
}

func (l *lastPart) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	n, err := l.part.Read(p)
	if err != io.EOF {
		return n, err
	}
	for {
		next, err := l.mr.NextPart()
		if err == io.EOF {
			l.done = true
			return n, io.EOF
		}
		if err != nil {
			return n, err
		}
		if next.FormName() == "file" {
			return n, errTwoFiles
		}
		if _, err := io.Copy(io.Discard, io.LimitReader(next, 1<<20)); err != nil {
			return n, err
		}
	}
}

// errBadBody is a request body that breaks off or is not well formed.
var errBadBody = errors.New("malformed or truncated request body")

// bodyError marks an error reading the client's body: a 413 past the limit,
// a 408 below the minimum rate, else a 400.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errBodyTimeout) {
		return err
	}
	return fmt.Errorf("%w: %w", errBadBody, err)
}

// partReader keeps the first error reading the file part but io.EOF: the
// client's body broke off, went over the limit or below the minimum rate.
type partReader struct {
	r   io.Reader
	err error
}

func (p *partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF && p.err == nil {
		p.err = err
	}
	return n, err
}
