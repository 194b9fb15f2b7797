package control

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 description of the control API, served on
// GET /openapi.json as the original FastAPI loader served one.
// TestOpenAPIDescribesEveryRoute keeps it and the router in step, and
// TestOpenAPIContract its answers and what the handlers send: every answer
// seen is described, every described answer is seen.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
