package cdn

import (
	"net/http"
	"strings"
)

// Operations are the values Operation returns, for metrics that want every
// label value present from the start.
var Operations = []string{"get", "head", "tail", "stat", "list", "put", "put_part",
	"multipart_start", "multipart_complete", "multipart_abort", "copy", "delete", "other"}

// Operation names the S3 call an HTTP request of a Client makes, in the
// Client's own words: get (a ranged GET pinned to an ETag), head and tail
// (the unpinned ranged GETs of an object's ends), stat (HEAD), list, put,
// the multipart steps, copy and delete. It reads only the method, query and
// headers, so a transport can label what passes through it.
func Operation(r *http.Request) string {
	q := r.URL.Query()
	_, uploadID := q["uploadId"]
	switch r.Method {
	case http.MethodGet:
		rng := r.Header.Get("Range")
		switch {
		case strings.HasPrefix(rng, "bytes=-"):
			return "tail"
		case rng != "" && r.Header.Get("If-Match") != "":
			return "get"
		case rng != "":
			return "head"
		case q.Has("list-type") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0:
			return "list" // a bucket's objects, or the buckets
		}
		return "get"
	case http.MethodHead:
		return "stat"
	case http.MethodPut:
		switch {
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "copy"
		case uploadID:
			return "put_part"
		}
		return "put"
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "multipart_start"
		case uploadID:
			return "multipart_complete"
		}
	case http.MethodDelete:
		if uploadID {
			return "multipart_abort"
		}
		return "delete"
	}
	return "other"
}

// NewTransport is the transport of a Client's default HTTPClient: it dials
// with a timeout, bounds the wait for response headers and ignores proxy
// variables. Callers that wrap it (to count requests) pass
// &http.Client{Transport: wrapped} as Options.HTTPClient.
func NewTransport() *http.Transport {
	return defaultHTTPClient().Transport.(*http.Transport)
}
