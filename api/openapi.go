package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of Hindsight's HTTP surface: the
// hooks, the read API, the human acts and the operational endpoints.
// app/openapi_test.go drives every operation it lists against a running
// Hindsight and validates each answer against it, so a new route, field
// or status fails that test until the document says it.
//
//go:embed openapi.json
var openAPI []byte

// RouteOpenAPI serves the document. It needs no credentials: it is
// documentation, and says nothing the code does not.
const RouteOpenAPI = "GET /api/v1/openapi.json"

// OpenAPI returns the OpenAPI document (JSON) that RouteOpenAPI serves.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPI)
}
