package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

func TestNearestRank(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []float64
		p      float64
		want   float64
	}{
		{"one value", []float64{7}, 50, 7},
		{"one value p90", []float64{7}, 90, 7},
		{"odd count median", []float64{1, 2, 3}, 50, 2},
		{"even count median is the lower middle", []float64{1, 2, 3, 4}, 50, 2},
		{"p90 of fewer than ten is the largest", []float64{1, 2, 3, 4, 5}, 90, 5},
		{"p90 of ten", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
		{"p90 of eleven", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 90, 10},
		{"p90 of twenty", seq(20), 90, 18},
		{"p100", []float64{1, 2, 3}, 100, 3},
		{"tiny p is the smallest", []float64{1, 2, 3}, 0.1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := api.NearestRank(tc.values, tc.p); got != tc.want {
				t.Errorf("NearestRank(%v, %v) = %v, want %v", tc.values, tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i + 1)
	}
	return v
}

var (
	reportSince = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	reportUntil = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

// reportIncident is an incident of service and severity that started
// day days after reportSince (at hour 10), with times to detect and
// resolve in seconds; a negative one is nil (unknown, not reached).
func reportIncident(id, service, severity string, status hindsight.Status, day int, ttd, ttr float64) hindsight.Incident {
	start := reportSince.AddDate(0, 0, day).Add(10 * time.Hour)
	inc := hindsight.Incident{ID: id, Title: "HighLatency on " + service, Status: status, Severity: severity,
		Service: service, Key: service, StartedAt: start, Anchor: "fp-" + id + "@" + start.Format(time.RFC3339)}
	if ttd >= 0 {
		s := hindsight.Seconds(ttd)
		inc.TimeToDetect = &s
		at := start.Add(s.Duration())
		inc.DetectedAt = &at
	}
	if ttr >= 0 {
		s := hindsight.Seconds(ttr)
		inc.TimeToResolve = &s
		at := start.Add(s.Duration())
		inc.ResolvedAt = &at
	}
	return inc
}

func secs(v float64) *hindsight.Seconds { s := hindsight.Seconds(v); return &s }

func stats(n int, median, p90 float64) api.DurationStats {
	return api.DurationStats{Count: n, Median: secs(median), P90: secs(p90)}
}

func TestBuildReport(t *testing.T) {
	open, resolved := hindsight.StatusOpen, hindsight.StatusResolved
	for _, tc := range []struct {
		name string
		incs []hindsight.Incident
		want []api.ReportGroup
	}{
		{"nothing", nil, []api.ReportGroup{}},
		{
			"one group",
			[]hindsight.Incident{
				reportIncident("a", "checkout", "critical", resolved, 1, 60, 1800),
				reportIncident("b", "checkout", "critical", resolved, 2, 120, 3600),
				reportIncident("c", "checkout", "critical", resolved, 3, 300, 4380),
			},
			[]api.ReportGroup{{Service: "checkout", Severity: "critical", Incidents: 3,
				TimeToDetect: stats(3, 120, 300), TimeToResolve: stats(3, 3600, 4380)}},
		},
		{
			"unknown detection and open incidents count as incidents only",
			[]hindsight.Incident{
				reportIncident("a", "checkout", "critical", resolved, 1, -1, 1800), // backfilled: TTD unknown
				reportIncident("b", "checkout", "critical", open, 2, 90, -1),       // still open
				reportIncident("c", "checkout", "critical", resolved, 3, 30, 600),
			},
			[]api.ReportGroup{{Service: "checkout", Severity: "critical", Incidents: 3,
				TimeToDetect: stats(2, 30, 90), TimeToResolve: stats(2, 600, 1800)}},
		},
		{
			"nothing known",
			[]hindsight.Incident{reportIncident("a", "search", "warning", open, 1, -1, -1)},
			[]api.ReportGroup{{Service: "search", Severity: "warning", Incidents: 1}},
		},
		{
			"pending, suppressed and outside the window are left out",
			[]hindsight.Incident{
				reportIncident("a", "checkout", "critical", hindsight.StatusPending, 1, 60, -1),
				reportIncident("b", "checkout", "critical", hindsight.StatusSuppressed, 1, 60, 120),
				reportIncident("c", "checkout", "critical", resolved, -1, 60, 120), // the day before since
				reportIncident("d", "checkout", "critical", resolved, 30, 60, 120), // after until
				reportIncident("e", "checkout", "critical", resolved, 29, 45, 900),
			},
			[]api.ReportGroup{{Service: "checkout", Severity: "critical", Incidents: 1,
				TimeToDetect: stats(1, 45, 45), TimeToResolve: stats(1, 900, 900)}},
		},
		{
			"grouped by service and severity, ordered by service then most severe first",
			[]hindsight.Incident{
				reportIncident("a", "search", "info", resolved, 1, 10, 20),
				reportIncident("b", "checkout", "warning", resolved, 2, 30, 40),
				reportIncident("c", "checkout", "critical", resolved, 3, 50, 60),
				reportIncident("d", "checkout", "page", resolved, 4, 70, 80),
				reportIncident("e", "checkout", "", resolved, 5, 90, 100),
				reportIncident("f", "checkout", "critical", resolved, 6, 110, 120),
			},
			[]api.ReportGroup{
				{Service: "checkout", Severity: "critical", Incidents: 2, TimeToDetect: stats(2, 50, 110), TimeToResolve: stats(2, 60, 120)},
				{Service: "checkout", Severity: "page", Incidents: 1, TimeToDetect: stats(1, 70, 70), TimeToResolve: stats(1, 80, 80)},
				{Service: "checkout", Severity: "warning", Incidents: 1, TimeToDetect: stats(1, 30, 30), TimeToResolve: stats(1, 40, 40)},
				{Service: "checkout", Severity: "", Incidents: 1, TimeToDetect: stats(1, 90, 90), TimeToResolve: stats(1, 100, 100)},
				{Service: "search", Severity: "info", Incidents: 1, TimeToDetect: stats(1, 10, 10), TimeToResolve: stats(1, 20, 20)},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := api.BuildReport(tc.incs, reportSince, reportUntil)
			if !got.Since.Equal(reportSince) || !got.Until.Equal(reportUntil) {
				t.Errorf("window = %s to %s, want %s to %s", got.Since, got.Until, reportSince, reportUntil)
			}
			if !reflect.DeepEqual(got.Groups, tc.want) {
				t.Errorf("groups:\n got %s\nwant %s", mustJSON(t, got.Groups), mustJSON(t, tc.want))
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReportWindow(t *testing.T) {
	now := time.Date(2026, 12, 2, 5, 15, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, since, until string
		from, to           time.Time
		err                string // a part of the error; "" for none
	}{
		{"defaults", "", "", now.AddDate(0, 0, -30), now, ""},
		{"days", "30d", "", now.AddDate(0, 0, -30), now, ""},
		{"weeks", "2w", "", now.AddDate(0, 0, -14), now, ""},
		{"days and hours", "1d12h", "", now.Add(-36 * time.Hour), now, ""},
		{"go duration", "90m", "", now.Add(-90 * time.Minute), now, ""},
		{"rfc 3339", "2026-11-01T00:00:00Z", "2026-11-15T12:00:00+01:00",
			time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 15, 11, 0, 0, 0, time.UTC), ""},
		{"date", "2026-11-01", "1d", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), now.AddDate(0, 0, -1), ""},
		{"garbage", "last month", "", time.Time{}, time.Time{}, `since "last month": want a duration`},
		{"unit missing", "30", "", time.Time{}, time.Time{}, `since "30": want a duration`},
		{"negative", "-5h", "", time.Time{}, time.Time{}, `since "-5h": want a positive duration`},
		{"zero", "0d", "", time.Time{}, time.Time{}, `since "0d": want a positive duration`},
		{"too far", "99999999999d", "", time.Time{}, time.Time{}, `since "99999999999d"`},
		{"offset with its + decoded to a space", "2026-11-01T00:00:00 01:00", "", time.Time{}, time.Time{}, "%2B"},
		{"bad until", "", "tomorrow", time.Time{}, time.Time{}, `until "tomorrow"`},
		{"since after until", "1d", "2d", time.Time{}, time.Time{}, "since (2026-12-01T05:15:00Z) is after until (2026-11-30T05:15:00Z)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to, err := api.ReportWindow(tc.since, tc.until, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !from.Equal(tc.from) || !to.Equal(tc.to) {
				t.Errorf("window = %s to %s, want %s to %s", from, to, tc.from, tc.to)
			}
		})
	}
}

// reportStore is a real bbolt state holding incs, as the correlator
// stores them.
func reportStore(t *testing.T, incs ...hindsight.Incident) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	byKey := map[string][]hindsight.Incident{}
	var c correlate.Change
	for _, inc := range incs {
		byKey[inc.Key] = append(byKey[inc.Key], inc)
	}
	for k, v := range byKey {
		c.Keys = append(c.Keys, correlate.KeyChange{Key: k, Incidents: v})
	}
	if err := s.Commit(c); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReportEndpoint(t *testing.T) {
	resolved := hindsight.StatusResolved
	store := reportStore(t,
		reportIncident("a", "checkout", "critical", resolved, 1, 60, 1800),
		reportIncident("b", "checkout", "critical", resolved, 10, -1, 4380),
		reportIncident("c", "checkout", "critical", hindsight.StatusOpen, 20, 150, -1),
		reportIncident("d", "search", "warning", resolved, 25, 30, 600),
		reportIncident("e", "search", "warning", hindsight.StatusSuppressed, 26, 30, 60),
		reportIncident("f", "search", "warning", resolved, -3, 30, 600), // before the window
	)
	now := reportUntil.Add(time.Hour)
	mux := http.NewServeMux()
	api.Register(mux, api.Options{Incidents: api.Enriched{Store: store, Config: correlate.DefaultConfig()}, Now: func() time.Time { return now }})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(t *testing.T, query string) (int, []byte) {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + "/api/v1/report?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		return res.StatusCode, body
	}

	t.Run("shape", func(t *testing.T) {
		status, body := get(t, "since="+url.QueryEscape(reportSince.Format(time.RFC3339))+"&until="+url.QueryEscape(reportUntil.Format(time.RFC3339)))
		if status != http.StatusOK {
			t.Fatalf("status %d %s, want 200", status, body)
		}
		// The exact JSON, keys and nulls included: it is the API's contract.
		var got, want any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal([]byte(`{
  "since": "2026-11-01T00:00:00Z",
  "until": "2026-12-01T00:00:00Z",
  "groups": [
    {"service": "checkout", "severity": "critical", "incidents": 3,
     "time_to_detect": {"count": 2, "median_seconds": 60, "p90_seconds": 150},
     "time_to_resolve": {"count": 2, "median_seconds": 1800, "p90_seconds": 4380}},
    {"service": "search", "severity": "warning", "incidents": 1,
     "time_to_detect": {"count": 1, "median_seconds": 30, "p90_seconds": 30},
     "time_to_resolve": {"count": 1, "median_seconds": 600, "p90_seconds": 600}}
  ]
}`), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %s\nwant %s", mustJSON(t, got), mustJSON(t, want))
		}
	})

	t.Run("duration since", func(t *testing.T) {
		// 7d before now (an hour after reportUntil): only "d", on day 25.
		status, body := get(t, "since=7d")
		var rep api.Report
		if err := json.Unmarshal(body, &rep); status != http.StatusOK || err != nil {
			t.Fatalf("status %d %s (%v), want 200", status, body, err)
		}
		if !rep.Since.Equal(now.AddDate(0, 0, -7)) || !rep.Until.Equal(now) {
			t.Errorf("window %s to %s, want %s to %s", rep.Since, rep.Until, now.AddDate(0, 0, -7), now)
		}
		if len(rep.Groups) != 1 || rep.Groups[0].Service != "search" || rep.Groups[0].Incidents != 1 {
			t.Errorf("groups = %s, want search's one incident", mustJSON(t, rep.Groups))
		}
	})

	t.Run("default is 30 days", func(t *testing.T) {
		status, body := get(t, "")
		var rep api.Report
		if err := json.Unmarshal(body, &rep); status != http.StatusOK || err != nil {
			t.Fatalf("status %d %s (%v), want 200", status, body, err)
		}
		if !rep.Since.Equal(now.Add(-api.DefaultReportSince)) {
			t.Errorf("since = %s, want %s", rep.Since, now.Add(-api.DefaultReportSince))
		}
	})

	t.Run("empty window", func(t *testing.T) {
		status, body := get(t, "since=2020-01-01&until=2020-02-01")
		if status != http.StatusOK || !strings.Contains(string(body), `"groups": []`) {
			t.Errorf("status %d %s, want 200 with an empty list of groups", status, body)
		}
	})

	for _, tc := range []struct{ name, query, want string }{
		{"bad since", "since=lastweek", `since \"lastweek\": want a duration back from now`},
		{"bad until", "until=soon", `until \"soon\"`},
		{"since after until", "since=2026-11-20T00:00:00Z&until=2026-11-10T00:00:00Z", "is after until"},
		{"unencoded plus", "since=2026-11-01T00:00:00+01:00", "%2B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, tc.query)
			if status != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
				t.Errorf("status %d %s, want 400 with %q", status, body, tc.want)
			}
		})
	}
}

func TestReportEndpointAuth(t *testing.T) {
	store := reportStore(t)
	mux := http.NewServeMux()
	api.Register(mux, api.Options{Incidents: store, Authorize: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer ok" }})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer ok", http.StatusOK}} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/report?since=30d", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("Authorization %q: status %d, want %d", tc.auth, res.StatusCode, tc.want)
		}
	}
}
