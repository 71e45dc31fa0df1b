package api_test

import (
	"io"
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
	u := srv.URL + "/api/v1/incidents?limit=50"
	var size int64
	for b.Loop() {
		resp, err := srv.Client().Get(u)
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d, %v", u, resp.StatusCode, err)
		}
	}
	b.ReportMetric(float64(size), "bytes/page")
}
