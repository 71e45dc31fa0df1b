package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/correlate"
)

// BenchmarkListIncidentsEnriched is the first page of
// GET /api/v1/incidents?limit=50 as serve answers it: every incident
// enriched with its suspected changes and related incidents, over the
// same 100,000 stored incidents as BenchmarkListIncidents.
func BenchmarkListIncidentsEnriched(b *testing.B) {
	store := listStore(b)
	mux := http.NewServeMux()
	api.Register(mux, api.Options{Incidents: api.Enriched{Store: store, Config: correlate.DefaultConfig()}})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	benchGet(b, srv, "/api/v1/incidents?limit=50")
}
