package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

// benchIncidents is how many incidents the list benchmark stores.
const benchIncidents = 100_000

var (
	benchStoreOnce sync.Once
	benchStore     *boltstore.Store
	benchStoreErr  error
)

// listStore returns a bbolt state with benchIncidents incidents. Building
// it takes a while, so the file is kept in os.TempDir between runs
// (named by count and layout version) and built again only when it is
// missing or no longer opens, say after a schema change.
func listStore(b *testing.B) *boltstore.Store {
	b.Helper()
	benchStoreOnce.Do(func() {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("hindsight-bench-api-%d-v1.db", benchIncidents))
		if s, err := boltstore.Open(path); err == nil {
			if c, err := s.Counts(); err == nil && c.Incidents == benchIncidents {
				benchStore = s
				return
			}
			s.Close()
		}
		b.Logf("building %s with %d incidents (kept for later runs)", path, benchIncidents)
		tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
		if benchStoreErr = fillStore(tmp, benchIncidents); benchStoreErr != nil {
			os.Remove(tmp)
			return
		}
		if benchStoreErr = os.Rename(tmp, path); benchStoreErr != nil {
			return
		}
		benchStore, benchStoreErr = boltstore.Open(path)
	})
	if benchStoreErr != nil {
		b.Fatal(benchStoreErr)
	}
	return benchStore
}

// fillStore commits n resolved incidents over 500 services, one every
// 5 minutes, each with two alerts firing and resolving, a deploy as
// suspected change on every third, as the correlator stores them.
func fillStore(path string, n int) error {
	s, err := boltstore.Open(path)
	if err != nil {
		return err
	}
	defer s.Close()
	const services, batch = 500, 5000
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for from := 0; from < n; from += batch {
		byKey := map[string][]hindsight.Incident{}
		var keys []string
		for i := from; i < min(from+batch, n); i++ {
			svc := fmt.Sprintf("svc-%03d", i%services)
			if _, ok := byKey[svc]; !ok {
				keys = append(keys, svc)
			}
			byKey[svc] = append(byKey[svc], benchIncident(i, svc, base.Add(time.Duration(i)*5*time.Minute)))
		}
		var c correlate.Change
		for _, k := range keys {
			c.Keys = append(c.Keys, correlate.KeyChange{Key: k, Incidents: byKey[k]})
		}
		if err := s.Commit(c); err != nil {
			return err
		}
	}
	return nil
}

func benchIncident(i int, svc string, start time.Time) hindsight.Incident {
	end := start.Add(17 * time.Minute)
	detected := start.Add(45 * time.Second)
	ttd, ttr := hindsight.Seconds(45), hindsight.Seconds(end.Sub(start).Seconds())
	inc := hindsight.Incident{
		ID: fmt.Sprintf("inc-%016x", i), Title: "HighLatency on " + svc, Status: hindsight.StatusResolved, Severity: "critical",
		Service: svc, Key: svc, KeyLabels: map[string]string{"service": svc}, StartedAt: start,
		DetectedAt: &detected, ResolvedAt: &end, TimeToDetect: &ttd, TimeToResolve: &ttr,
		Anchor: fmt.Sprintf("%016x@%s", i, start.Format(time.RFC3339Nano)),
		Lifecycle: []hindsight.LifecycleChange{
			{Time: start, Status: "opened", Reason: "HighLatency started firing (service=" + svc + ")"},
			{Time: end, Status: "resolved", Reason: "every alert resolved"},
		},
	}
	for j, name := range []string{"HighLatency", "HighErrorRate"} {
		fp := fmt.Sprintf("%016x", i*2+j)
		pod := fmt.Sprintf("%s-7d9f8c6b5-%05x", svc, i*2+j)
		labels := map[string]string{"alertname": name, "severity": "critical", "service": svc, "instance": pod + ":8080", "env": "prod", "cluster": "eu-1"}
		s, e := start.Add(time.Duration(j)*time.Minute), end.Add(-time.Duration(j)*time.Minute)
		inc.Alerts = append(inc.Alerts, hindsight.AlertSummary{Name: name, Fingerprint: fp, Severity: "critical", Instance: pod + ":8080",
			Labels: labels, Summary: name + " on " + svc, StartsAt: s, EndsAt: &e, ReceivedAt: s.Add(45 * time.Second),
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=x", RunbookURL: "https://runbooks.example.com/" + name})
		for _, t := range []struct {
			k  hindsight.Kind
			at time.Time
			st string
		}{{hindsight.KindAlertFiring, s, "firing"}, {hindsight.KindAlertResolved, e, "resolved"}} {
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{ID: hindsight.AlertEventID(fp, s, t.st), Time: t.at, Kind: t.k,
				Source: hindsight.SourceAlertmanager, Summary: name + " on " + svc, Reason: `key label service="` + svc + `"`,
				Labels: labels, URL: "http://prometheus.example:9090/graph?g0.expr=x", Detection: j == 0 && t.k == hindsight.KindAlertFiring})
		}
	}
	if i%3 == 0 {
		inc.SuspectedChanges = []hindsight.SuspectedChange{{EventID: fmt.Sprintf("d-%032x", i), Time: start.Add(-12 * time.Minute),
			Service: svc, Environment: "prod", Version: fmt.Sprintf("v1.%d.0", i), Status: "succeeded", Actor: "ci",
			MinutesBefore: 12, Score: 0.68, Reason: "same service " + svc + "; 12m before the first alert"}}
	}
	return inc
}

// BenchmarkListIncidents is GET /api/v1/incidents?limit=50 through
// api.Register on a real HTTP server, over a bbolt state of 100,000
// incidents: the first page, and a page 50,000 incidents deep reached
// by its cursor.
func BenchmarkListIncidents(b *testing.B) {
	store := listStore(b)
	mux := http.NewServeMux()
	api.Register(mux, api.Options{Incidents: store})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cursor := ""
	for range (benchIncidents / 2) / api.MaxPageSize {
		_, next, err := store.List(context.Background(), boltstore.ListOptions{Limit: api.MaxPageSize, Cursor: cursor})
		if err != nil {
			b.Fatal(err)
		}
		cursor = next
	}
	for _, tc := range []struct{ name, query string }{
		{"first-page", "limit=50"},
		{"deep-page", "limit=50&cursor=" + url.QueryEscape(cursor)},
	} {
		b.Run(tc.name, func(b *testing.B) { benchGet(b, srv, "/api/v1/incidents?"+tc.query) })
	}
}

// benchGet measures GET path on srv, reporting the answer's size.
func benchGet(b *testing.B, srv *httptest.Server, path string) {
	u := srv.URL + path
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
