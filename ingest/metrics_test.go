package ingest_test

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

// newMeteredServer is newServer with a Handler kept for its metrics.
func newMeteredServer(t *testing.T, reg prometheus.Registerer, opts ingest.Options) (*httptest.Server, *ingest.Handler) {
	t.Helper()
	if opts.Publisher == nil {
		opts.Publisher = &recordingPublisher{}
	}
	opts.Registerer = reg
	opts.Now = fixedNow
	opts.Incidents = incidentMap{incidents: map[string]*hindsight.Incident{testIncident.ID: testIncident}}
	h, err := ingest.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, h := newMeteredServer(t, reg, ingest.Options{
		Auth:         ingest.AuthConfig{Alertmanager: ingest.Credentials{BearerToken: fixtureToken}},
		MaxBodyBytes: 4096,
	})
	received, rejected, deduplicated, duration := h.Metrics()

	// Before any request every source is exported at zero.
	if n := testutil.CollectAndCount(received); n != 5 {
		t.Errorf("%d received series before any request, want 5 (one per source, github and human)", n)
	}

	auth := map[string]string{"Authorization": "Bearer " + fixtureToken}
	for _, f := range []string{"01-first-firing.json", "02-second-alert-joins.json", "03-repeat.json"} {
		if r := post(t, srv.URL+amPath, fixture(t, f), auth); r.status != 200 {
			t.Fatalf("%s: status %d", f, r.status)
		}
	}
	partial := mustJSON(t, notification(goodAlert(), alert("pending", "2026-11-22T04:00:00Z", zeroTime, apiLabels, nil), alert("firing", "", "", apiLabels, nil)))
	requests := []struct {
		path   string
		body   []byte
		header map[string]string
		status int
	}{
		{amPath, partial, auth, 200},                                                            // 1 received, 2 unusable_alert
		{amPath, fixture(t, "01-first-firing.json"), nil, 401},                                  // unauthorized
		{amPath, []byte("{"), auth, 400},                                                        // bad_json
		{amPath, mustJSON(t, notification(alert("firing", "", "", apiLabels, nil))), auth, 400}, // unusable_alert
		{deployPath, []byte(goodDeploy), nil, 200},                                              // 1 received
		{deployPath, []byte(`{"status":"started"}`), nil, 400},                                  // missing_field
		{deployPath, []byte(`{"service":"a","status":"done"}`), nil, 400},                       // bad_value
		{deployPath, []byte(`{"service":"a","status":"started","x":1}`), nil, 400},              // unknown_field
		{deployPath, make([]byte, 5000), nil, 413},                                              // too_large
		{deployPath, []byte(goodDeploy), map[string]string{"Content-Type": "text/csv"}, 415},    // unsupported_media_type
		{notesPath, []byte(`{"text":"x"}`), nil, 201},                                           // 1 received
		{"/api/v1/incidents/nope/notes", []byte(`{"text":"x"}`), nil, 404},                      // not_found
	}
	for _, rq := range requests {
		if r := post(t, srv.URL+rq.path, rq.body, rq.header); r.status != rq.status {
			t.Fatalf("%s %.20q: status %d (%s), want %d", rq.path, rq.body, r.status, r.raw, rq.status)
		}
	}

	counts := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"received alertmanager", received.WithLabelValues("alertmanager"), 1 + 2 + 2 + 1},
		{"received deploy", received.WithLabelValues("deploy"), 1},
		{"received note", received.WithLabelValues("note"), 1},
		{"deduplicated", deduplicated, 0 + 1 + 2},
		{"rejected unusable_alert", rejected.WithLabelValues("alertmanager", "unusable_alert"), 2 + 1},
		{"rejected unauthorized", rejected.WithLabelValues("alertmanager", "unauthorized"), 1},
		{"rejected bad_json", rejected.WithLabelValues("alertmanager", "bad_json"), 1},
		{"rejected missing_field", rejected.WithLabelValues("deploy", "missing_field"), 1},
		{"rejected bad_value", rejected.WithLabelValues("deploy", "bad_value"), 1},
		{"rejected unknown_field", rejected.WithLabelValues("deploy", "unknown_field"), 1},
		{"rejected too_large", rejected.WithLabelValues("deploy", "too_large"), 1},
		{"rejected unsupported_media_type", rejected.WithLabelValues("deploy", "unsupported_media_type"), 1},
		{"rejected not_found", rejected.WithLabelValues("note", "not_found"), 1},
	}
	for _, tc := range counts {
		t.Run(tc.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tc.c); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("bounded series", func(t *testing.T) {
		if n := testutil.CollectAndCount(rejected); n != 9 {
			t.Errorf("%d rejected series, want 9 (one per source and reason seen)", n)
		}
		if n := testutil.CollectAndCount(duration); n != 3 {
			t.Errorf("%d publish duration series, want 3 (one per source)", n)
		}
		if n := testutil.CollectAndCount(reg); n != 5+9+1+3 {
			t.Errorf("registry holds %d series, want %d (received: one per source)", n, 5+9+1+3)
		}
	})
	t.Run("one publish observed per accepted request", func(t *testing.T) {
		want := map[string]uint64{"alertmanager": 4, "deploy": 1, "note": 1}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range families {
			if mf.GetName() != "hindsight_publish_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				source := m.GetLabel()[0].GetValue()
				if got := m.GetHistogram().GetSampleCount(); got != want[source] {
					t.Errorf("%s: %d observations, want %d", source, got, want[source])
				}
			}
		}
	})
}

// TestMetricsRegistration checks that a nil Registerer works, and that a
// second Handler on one registry shares the first one's collectors.
func TestMetricsRegistration(t *testing.T) {
	t.Run("nil registerer", func(t *testing.T) {
		srv, h := newMeteredServer(t, nil, ingest.Options{})
		if r := post(t, srv.URL+deployPath, []byte(goodDeploy), nil); r.status != 200 {
			t.Fatalf("status %d, want 200", r.status)
		}
		received, _, _, _ := h.Metrics()
		if got := testutil.ToFloat64(received.WithLabelValues("deploy")); got != 1 {
			t.Errorf("received %v, want 1", got)
		}
	})
	t.Run("two handlers, one registry", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		srv1, h1 := newMeteredServer(t, reg, ingest.Options{})
		srv2, _ := newMeteredServer(t, reg, ingest.Options{})
		for _, srv := range []*httptest.Server{srv1, srv2} {
			if r := post(t, srv.URL+deployPath, []byte(goodDeploy), nil); r.status != 200 {
				t.Fatalf("status %d, want 200", r.status)
			}
		}
		received, _, _, _ := h1.Metrics()
		if got := testutil.ToFloat64(received.WithLabelValues("deploy")); got != 2 {
			t.Errorf("received %v, want 2 (both handlers)", got)
		}
	})
}
