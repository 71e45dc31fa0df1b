package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

// reportDataDir is a data directory whose state file holds, relative to
// now: on checkout (critical) three incidents in the last 30 days, one
// backfilled (time to detect unknown) and one still open, and one 40 days
// ago; on search (warning) one resolved and one suppressed.
func reportDataDir(t *testing.T, now time.Time) string {
	t.Helper()
	dir := t.TempDir()
	s, err := boltstore.Open(filepath.Join(dir, boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	inc := func(id, service, severity string, status hindsight.Status, daysAgo int, ttd, ttr time.Duration) hindsight.Incident {
		start := now.Add(-time.Duration(daysAgo) * 24 * time.Hour).Truncate(time.Second)
		i := hindsight.Incident{ID: id, Title: "HighLatency on " + service, Status: status, Severity: severity, Service: service,
			Key: service, StartedAt: start, Anchor: "fp-" + id + "@" + start.Format(time.RFC3339)}
		if ttd > 0 {
			s := hindsight.Seconds(ttd.Seconds())
			i.TimeToDetect = &s
		}
		if ttr > 0 {
			s, at := hindsight.Seconds(ttr.Seconds()), start.Add(ttr)
			i.TimeToResolve, i.ResolvedAt = &s, &at
		}
		return i
	}
	c := correlate.Change{Keys: []correlate.KeyChange{
		{Key: "checkout", Incidents: []hindsight.Incident{
			inc("c1", "checkout", "critical", hindsight.StatusResolved, 20, time.Minute, time.Hour),
			inc("c2", "checkout", "critical", hindsight.StatusResolved, 10, 0, 73*time.Minute),
			inc("c3", "checkout", "critical", hindsight.StatusOpen, 1, 5*time.Minute, 0),
			inc("c4", "checkout", "critical", hindsight.StatusResolved, 40, time.Minute, time.Minute),
		}},
		{Key: "search", Incidents: []hindsight.Incident{
			inc("s1", "search", "warning", hindsight.StatusResolved, 3, 24*time.Minute, 4*time.Minute+30*time.Second),
			inc("s2", "search", "warning", hindsight.StatusSuppressed, 2, time.Minute, time.Minute),
		}},
	}}
	if err := s.Commit(c); err != nil {
		t.Fatal(err)
	}
	return dir
}

// rows returns the table's rows below its SERVICE header, as fields.
func rows(t *testing.T, out string) [][]string {
	t.Helper()
	_, table, ok := strings.Cut(out, "SERVICE")
	if !ok {
		t.Fatalf("no table in:\n%s", out)
	}
	var rs [][]string
	for _, l := range strings.Split(strings.TrimSpace(table), "\n")[1:] {
		rs = append(rs, strings.Fields(l))
	}
	return rs
}

func TestReportFromDataDir(t *testing.T) {
	t.Setenv("HINDSIGHT_SERVER", "")
	now := time.Now()
	dir := reportDataDir(t, now)

	var out, errb bytes.Buffer
	if code := run([]string{"report", "--data-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("report: exit %d, %s", code, errb.String())
	}
	got := rows(t, out.String())
	want := [][]string{
		// c1-c3: TTD of c1 and c3 (c2 backfilled), TTR of c1 and c2 (c3 open).
		{"checkout", "critical", "3", "1m", "5m", "2", "1h", "1h13m", "2"},
		{"search", "warning", "1", "24m", "24m", "1", "4m30s", "4m30s", "1"},
	}
	if strings.Join(flat(got), " ") != strings.Join(flat(want), " ") {
		t.Errorf("rows:\n got %q\nwant %q\n%s", got, want, out.String())
	}
	if !strings.Contains(out.String(), "(30d)") || !strings.Contains(out.String(), "nearest-rank") {
		t.Errorf("no window or percentile definition in:\n%s", out.String())
	}
	// Aligned: every row's columns start where the header's do.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	header := lines[len(lines)-3]
	for _, l := range lines[len(lines)-2:] {
		at := 0
		for i, name := range []string{"SERVICE", "SEVERITY", "INCIDENTS", "TTD MEDIAN", "TTD P90", "TTD N", "TTR MEDIAN", "TTR P90", "TTR N"} {
			field := strings.Fields(l)[i]
			at += strings.Index(l[at:], field)
			if col := strings.Index(header, name); col != at {
				t.Errorf("%s starts at column %d, its value %q at %d:\n%s", name, col, field, at, out.String())
			}
			at += len(field)
		}
	}

	// The data directory from the environment, a wider window, as JSON.
	t.Setenv("HINDSIGHT_DATA_DIR", dir)
	out.Reset()
	if code := run([]string{"report", "--since", "6w", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("report --json: exit %d, %s", code, errb.String())
	}
	var rep api.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode %s: %v", out.String(), err)
	}
	if len(rep.Groups) != 2 || rep.Groups[0].Incidents != 4 || rep.Groups[0].TimeToResolve.Count != 3 {
		t.Errorf("6 weeks: %s; want checkout's 4 incidents, 3 resolved", out.String())
	}
	if d := rep.Until.Sub(rep.Since); d != 6*7*24*time.Hour {
		t.Errorf("window %s, want 6 weeks", d)
	}

	out.Reset()
	if code := run([]string{"report", "--since", "2020-01-01", "--until", "2020-02-01"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "No incidents opened in that time.") {
		t.Errorf("empty window: exit %d, printed:\n%s", code, out.String())
	}
}

func flat(rs [][]string) []string {
	var f []string
	for _, r := range rs {
		f = append(f, strings.Join(r, " "))
	}
	return f
}

func TestReportMistakes(t *testing.T) {
	t.Setenv("HINDSIGHT_SERVER", "")
	dir := reportDataDir(t, time.Now())
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad since", []string{"--since", "a month"}, 2, `--since "a month": want a duration back from now like 30d`},
		{"since after until", []string{"--since", "1d", "--until", "2d"}, 2, "is after until"},
		{"arguments", []string{"checkout"}, 2, "report takes no arguments"},
		{"no state file", []string{"--data-dir", t.TempDir()}, 1, "no state file at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"report", "--data-dir", dir}, tc.args...), &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errb.String(), tc.code, tc.want)
			}
		})
	}
}

func TestReportWhileServeHoldsTheState(t *testing.T) {
	t.Setenv("HINDSIGHT_SERVER", "")
	dir := reportDataDir(t, time.Now())
	// Serve holds the data directory's LOCK and the state file open; this
	// process opening it holds bbolt's lock just the same.
	for _, hold := range []string{"LOCK", boltstore.FileName} {
		t.Run(hold, func(t *testing.T) {
			if hold == "LOCK" {
				if err := os.WriteFile(filepath.Join(dir, "LOCK"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
				release, err := boltstore.Lock(filepath.Join(dir, "LOCK"))
				if err != nil {
					t.Fatal(err)
				}
				defer release()
			} else {
				s, err := boltstore.Open(filepath.Join(dir, boltstore.FileName))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			var out, errb bytes.Buffer
			start := time.Now()
			code := run([]string{"report", "--data-dir", dir}, &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), "is in use") || !strings.Contains(errb.String(), "hindsight report --server http://") {
				t.Errorf("exit %d, stderr %q; want it to say to ask the running server with --server", code, errb.String())
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s: it should not wait for the lock", d)
			}
		})
	}
}

func TestReportFromServer(t *testing.T) {
	t.Setenv("HINDSIGHT_SERVER", "")
	dir := reportDataDir(t, time.Now())
	window := []string{"--since", time.Now().AddDate(0, 0, -30).UTC().Format(time.RFC3339), "--until", time.Now().UTC().Format(time.RFC3339)}
	var local, localJSON, errb bytes.Buffer
	if code := run(append([]string{"report", "--data-dir", dir}, window...), &local, &errb); code != 0 {
		t.Fatalf("report: exit %d, %s", code, errb.String())
	}
	if code := run(append([]string{"report", "--data-dir", dir, "--json"}, window...), &localJSON, &errb); code != 0 {
		t.Fatalf("report --json: exit %d, %s", code, errb.String())
	}

	// As serve answers it: the API over the state file, behind a token.
	s, err := boltstore.Open(filepath.Join(dir, boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mux := http.NewServeMux()
	api.Register(mux, api.Options{Incidents: api.Enriched{Store: s, Config: correlate.DefaultConfig()},
		Authorize: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer api-token" }})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var out bytes.Buffer
	if code := run(append([]string{"report", "--server", srv.URL}, window...), &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Errorf("without the token: exit %d, stderr %q; want a 401 failure", code, errb.String())
	}
	t.Setenv("HINDSIGHT_TOKEN", "api-token")
	out.Reset()
	if code := run(append([]string{"report", "--server", srv.URL}, window...), &out, &errb); code != 0 {
		t.Fatalf("report --server: exit %d, %s", code, errb.String())
	}
	if out.String() != local.String() {
		t.Errorf("from the server:\n%s\nfrom the data directory:\n%s", out.String(), local.String())
	}
	// HINDSIGHT_SERVER alone selects the server, as serve's environment would.
	t.Setenv("HINDSIGHT_SERVER", srv.URL)
	out.Reset()
	if code := run(append([]string{"report", "--json"}, window...), &out, &errb); code != 0 {
		t.Fatalf("report --json with HINDSIGHT_SERVER: exit %d, %s", code, errb.String())
	}
	if out.String() != localJSON.String() {
		t.Errorf("JSON from the server:\n%s\nfrom the data directory:\n%s", out.String(), localJSON.String())
	}
	out.Reset()
	if code := run([]string{"report", "--since", "2026-11-01T00:00:00+01:00"}, &out, &errb); code != 0 {
		t.Errorf("a time zone offset (a + in the query): exit %d, %s", code, errb.String())
	}
}
