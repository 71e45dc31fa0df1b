package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/internal/natstest"
)

const fixtures = "../ingest/testdata/alertmanager-0.25"

// boot starts Hindsight in-process on a random loopback port with its
// embedded NATS and bbolt in dataDir.
func boot(t *testing.T, dataDir, config string, mod ...func(*app.Options)) *app.App {
	t.Helper()
	o := app.Options{Listen: "127.0.0.1:0", DataDir: dataDir}
	if config != "" {
		o.ConfigFile = filepath.Join(t.TempDir(), "hindsight.yml")
		if err := os.WriteFile(o.ConfigFile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range mod {
		m(&o)
	}
	a, err := app.New(context.Background(), o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

const tokenConfig = `
auth:
  alertmanager: {bearer_token: s3cret-token}
  deploy: {bearer_token: deploy-token}
`

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func call(t *testing.T, method, url, token string, body []byte) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, data}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func postAlerts(t *testing.T, a *app.App, body []byte) resp {
	t.Helper()
	r := call(t, "POST", "http://"+a.Addr()+"/hooks/alertmanager", "s3cret-token", body)
	if r.status != http.StatusOK {
		t.Fatalf("POST /hooks/alertmanager = %d %s, want 200", r.status, r.body)
	}
	return r
}

func incidents(t *testing.T, a *app.App) []hindsight.Incident {
	t.Helper()
	var out struct{ Incidents []hindsight.Incident }
	r := call(t, "GET", "http://"+a.Addr()+"/api/v1/incidents", "", nil)
	if r.status != 200 {
		t.Fatalf("list = %d %s", r.status, r.body)
	}
	r.json(t, &out)
	return out.Incidents
}

// eventually polls until cond holds: the correlator folds asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 15*time.Second, what, cond)
}

func eventuallyWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func kinds(inc hindsight.Incident) string {
	var k []string
	for _, e := range inc.Timeline {
		k = append(k, string(e.Kind))
	}
	return strings.Join(k, ",")
}

// Alertmanager 0.25's own notifications, replayed: one incident with two
// firing and two resolved entries, however often the repeats come, and
// across a restart.
func TestAlertmanagerCapturesGiveOneIncident(t *testing.T) {
	dir := t.TempDir()
	a := boot(t, dir, tokenConfig)
	for _, f := range []string{"01-first-firing.json", "02-second-alert-joins.json", "03-repeat.json", "03-repeat.json", "04-resolved.json"} {
		postAlerts(t, a, fixture(t, f))
	}
	want := "alert.firing,alert.firing,alert.resolved,alert.resolved"
	eventually(t, "one resolved incident with 4 entries", func() bool {
		incs := incidents(t, a)
		return len(incs) == 1 && kinds(incs[0]) == want && incs[0].Status == hindsight.StatusResolved
	})
	inc := incidents(t, a)[0]
	if inc.Service != "checkout" || inc.Severity != "critical" || inc.DetectedAt == nil || inc.ResolvedAt == nil {
		t.Fatalf("incident = %+v", inc)
	}
	a.Close()

	// Restart on the same data: repeats still collapse.
	a = boot(t, dir, tokenConfig)
	for _, f := range []string{"02-second-alert-joins.json", "03-repeat.json", "04-resolved.json"} {
		r := postAlerts(t, a, fixture(t, f))
		var body struct{ Duplicates int }
		r.json(t, &body)
		if body.Duplicates != 2 {
			t.Errorf("%s after restart: duplicates = %d, want 2 (JetStream's duplicate window)", f, body.Duplicates)
		}
	}
	time.Sleep(300 * time.Millisecond)
	incs := incidents(t, a)
	if len(incs) != 1 || kinds(incs[0]) != want {
		t.Fatalf("after restart and repeats: %d incidents, timeline %s; want 1 with %s", len(incs), kinds(incs[0]), want)
	}
}

func TestDeployAlertNoteAndDraft(t *testing.T) {
	a := boot(t, t.TempDir(), "")
	base := "http://" + a.Addr()
	start := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Second)
	deploy := fmt.Sprintf(`{"id":"gh-42","service":"checkout","environment":"prod","version":"v2.3.1","status":"succeeded","time":%q,"actor":"alice","commit":"abc123"}`,
		start.Add(-12*time.Minute).Format(time.RFC3339))
	if r := call(t, "POST", base+"/hooks/deploy", "", []byte(deploy)); r.status != 200 {
		t.Fatalf("deploy = %d %s", r.status, r.body)
	}
	alert := strings.ReplaceAll(string(fixture(t, "01-first-firing.json")), "2026-11-22T04:08:14Z", start.Format(time.RFC3339))
	if r := call(t, "POST", base+"/hooks/alertmanager", "", []byte(alert)); r.status != 200 {
		t.Fatalf("alert = %d %s", r.status, r.body)
	}
	var inc hindsight.Incident
	eventually(t, "an incident suspecting v2.3.1", func() bool {
		incs := incidents(t, a)
		if len(incs) == 1 {
			inc = incs[0]
		}
		return len(incs) == 1 && len(inc.SuspectedChanges) == 1
	})
	if s := inc.SuspectedChanges[0]; s.Version != "v2.3.1" || s.MinutesBefore != 12 {
		t.Fatalf("suspected = %+v, want v2.3.1 12 minutes before", s)
	}

	note := fmt.Sprintf(`{"text":"rolled back by hand","time":%q}`, start.Add(5*time.Minute).Format(time.RFC3339))
	if r := call(t, "POST", base+"/api/v1/incidents/"+inc.ID+"/notes", "", []byte(note)); r.status != http.StatusCreated {
		t.Fatalf("note = %d %s, want 201", r.status, r.body)
	}
	eventually(t, "the note on the timeline", func() bool {
		var got hindsight.Incident
		call(t, "GET", base+"/api/v1/incidents/"+inc.ID, "", nil).json(t, &got)
		return kinds(got) == "deploy.succeeded,alert.firing,note"
	})
	if r := call(t, "POST", base+"/api/v1/incidents/nope/notes", "", []byte(note)); r.status != http.StatusNotFound {
		t.Fatalf("note on unknown incident = %d, want 404", r.status)
	}

	r := call(t, "GET", base+"/api/v1/incidents/"+inc.ID+"/postmortem.md", "", nil)
	md := string(r.body)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/markdown") {
		t.Fatalf("postmortem = %d %s", r.status, r.header)
	}
	last := -1
	for _, h := range []string{"## Issue Summary", "## Timeline", "## Root Cause and Resolution", "## Corrective & Preventative Measures", "## Detection and Response"} {
		i := strings.Index(md, "\n"+h+"\n")
		if i < 0 || i < last {
			t.Fatalf("heading %q missing or out of order in:\n%s", h, md)
		}
		last = i
	}
	for _, want := range []string{"v2.3.1", "TODO:", "rolled back by hand", "UTC"} {
		if !strings.Contains(md, want) {
			t.Errorf("postmortem lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(strings.ToLower(md), "root cause: deploy") {
		t.Errorf("postmortem presents a suspicion as the root cause:\n%s", md)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	a := boot(t, t.TempDir(), "", func(o *app.Options) {})
	base := "http://" + a.Addr()
	for _, tc := range []struct {
		name, path, body string
		status           int
		mention          string
	}{
		{"malformed alertmanager JSON", "/hooks/alertmanager", `{"version":"4","alerts":[`, 400, "JSON"},
		{"deploy without service", "/hooks/deploy", `{"status":"succeeded"}`, 400, "service"},
		{"deploy with unknown status", "/hooks/deploy", `{"service":"x","status":"exploded"}`, 400, "status"},
		{"body over the limit", "/hooks/deploy", `{"service":"` + strings.Repeat("x", 2<<20) + `","status":"started"}`, 413, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "POST", base+tc.path, "", []byte(tc.body))
			var e struct{ Error string }
			r.json(t, &e)
			if r.status != tc.status || !strings.Contains(strings.ToLower(e.Error), strings.ToLower(tc.mention)) {
				t.Fatalf("got %d %q, want %d naming %q", r.status, e.Error, tc.status, tc.mention)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if seq, _ := a.Store().LastSeq(); seq != 0 {
		t.Fatalf("the stream got events from bad requests (last seq %d)", seq)
	}
}

func TestReadinessHealthAndMetrics(t *testing.T) {
	a := boot(t, t.TempDir(), tokenConfig)
	base := "http://" + a.Addr()
	if r := call(t, "GET", base+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz = %d", r.status)
	}
	if r := call(t, "GET", base+"/readyz", "", nil); r.status != 200 || !strings.Contains(string(r.body), `"bbolt": "ok"`) {
		t.Fatalf("readyz = %d %s", r.status, r.body)
	}
	// Times moved to now, so the incident is detected while it goes on.
	now := time.Now().UTC().Truncate(time.Second)
	shift := strings.NewReplacer("2026-11-22T04:08:14Z", now.Add(-2*time.Minute).Format(time.RFC3339),
		"2026-11-22T04:09:18Z", now.Add(-time.Minute).Format(time.RFC3339),
		"2026-11-22T04:10:26Z", now.Add(time.Minute).Format(time.RFC3339))
	postAlerts(t, a, []byte(shift.Replace(string(fixture(t, "01-first-firing.json")))))
	postAlerts(t, a, []byte(shift.Replace(string(fixture(t, "04-resolved.json")))))
	eventually(t, "a resolved incident", func() bool {
		incs := incidents(t, a)
		return len(incs) == 1 && incs[0].Status == hindsight.StatusResolved
	})
	// The correlator observes the durations once the batch is committed,
	// so the API can show the incident resolved a moment before /metrics
	// counts it: wait for the metrics as a scrape would, then check them.
	wants := []string{
		"hindsight_time_to_resolve_seconds_count{severity=\"critical\"} 1",
		"hindsight_time_to_detect_seconds_bucket",
		"hindsight_events_received_total{source=\"alertmanager\"} 3",
		"hindsight_incidents_open 0",
		"hindsight_incidents_pending 0",
		"hindsight_consumer_lag_messages 0",
		"hindsight_publish_duration_seconds",
	}
	var m string
	lacks := func() []string {
		m = string(call(t, "GET", base+"/metrics", "", nil).body)
		var missing []string
		for _, want := range wants {
			if !strings.Contains(m, want) {
				missing = append(missing, want)
			}
		}
		return missing
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(lacks()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range lacks() {
		t.Errorf("metrics lack %q", want)
	}
	if r := call(t, "POST", base+"/hooks/alertmanager", "wrong", fixture(t, "01-first-firing.json")); r.status != 401 {
		t.Fatalf("wrong token = %d, want 401", r.status)
	}
}

func TestRefusesNonLoopbackWithoutAuth(t *testing.T) {
	for _, tc := range []struct {
		name     string
		listen   string
		config   string
		insecure bool
		ok       bool
	}{
		{"loopback without auth", "127.0.0.1:0", "", false, true},
		{"any address without auth", "0.0.0.0:0", "", false, false},
		{"any address with --insecure", "0.0.0.0:0", "", true, true},
		{"any address with partial auth", "0.0.0.0:0", tokenConfig, false, false},
		{"any address with auth everywhere", "0.0.0.0:0", tokenConfig + "  api: {bearer_token: api-token}\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := app.Options{Listen: tc.listen, DataDir: t.TempDir(), Insecure: tc.insecure}
			if tc.config != "" {
				o.ConfigFile = filepath.Join(t.TempDir(), "c.yml")
				os.WriteFile(o.ConfigFile, []byte(tc.config), 0o600)
			}
			a, err := app.New(context.Background(), o)
			if a != nil {
				a.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("New = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "--insecure") {
				t.Fatalf("error %q does not say how to fix it", err)
			}
		})
	}
}

// With an external NATS that goes away, hooks answer 503 with
// Retry-After (never 2xx) and /readyz says not ready.
func TestBrokerDownAnswers503(t *testing.T) {
	ns := natstest.RunJetStream(t)
	a := boot(t, t.TempDir(), tokenConfig, func(o *app.Options) { o.NatsURL = ns.ClientURL() })
	base := "http://" + a.Addr()
	postAlerts(t, a, fixture(t, "01-first-firing.json"))
	ns.Shutdown()
	ns.WaitForShutdown()
	r := call(t, "POST", base+"/hooks/alertmanager", "s3cret-token", fixture(t, "02-second-alert-joins.json"))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("with NATS down: %d Retry-After=%q %s; want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	r = call(t, "POST", base+"/hooks/deploy", "deploy-token", []byte(`{"service":"checkout","status":"started"}`))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("deploy with NATS down: %d, want 503", r.status)
	}
	if r := call(t, "GET", base+"/readyz", "", nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with NATS down = %d %s, want 503", r.status, r.body)
	}
}

func TestAPIQueries(t *testing.T) {
	a := boot(t, t.TempDir(), "")
	base := "http://" + a.Addr()
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"", 200}, {"?limit=10&status=open&service=checkout", 200},
		{"?limit=0", 400}, {"?limit=many", 400}, {"?limit=100000", 400}, {"?status=burning", 400}, {"?cursor=%21%21", 400},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := call(t, "GET", base+"/api/v1/incidents"+tc.query, "", nil)
			if r.status != tc.status {
				t.Fatalf("%s = %d %s, want %d", tc.query, r.status, r.body, tc.status)
			}
			if tc.status == 200 && !strings.Contains(string(r.body), `"incidents": []`) {
				t.Fatalf("empty list body = %s, want an empty incidents array", r.body)
			}
		})
	}
	if r := call(t, "GET", base+"/api/v1/incidents/inc-nope", "", nil); r.status != 404 || !strings.Contains(string(r.body), "inc-nope") {
		t.Fatalf("unknown incident = %d %s", r.status, r.body)
	}
	if r := call(t, "GET", base+"/nowhere", "", nil); r.status != 404 {
		t.Fatalf("unknown path = %d", r.status)
	}
}

// With API credentials configured, reading incidents needs them too.
func TestAPIAuth(t *testing.T) {
	a := boot(t, t.TempDir(), "auth:\n  api: {bearer_token: api-token}\n")
	url := "http://" + a.Addr() + "/api/v1/incidents"
	if r := call(t, "GET", url, "", nil); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("without token = %d %v", r.status, r.header)
	}
	if r := call(t, "GET", url, "api-token", nil); r.status != 200 {
		t.Fatalf("with token = %d", r.status)
	}
	if r := call(t, "GET", "http://"+a.Addr()+"/metrics", "", nil); r.status != 200 {
		t.Fatalf("/metrics needs no credentials, got %d", r.status)
	}
}

// A second Hindsight on the same data directory fails at once, before it
// can run a second JetStream on the same store.
func TestSecondInstanceOnOneDataDirFails(t *testing.T) {
	dir := t.TempDir()
	boot(t, dir, "")
	for _, roles := range [][]string{nil, {"ingest"}} {
		start := time.Now()
		b, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: dir, Roles: roles})
		if b != nil {
			b.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "in use by another Hindsight") {
			t.Fatalf("roles %v: second New = %v, want a clear refusal", roles, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("refusal took %s", d)
		}
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	a := boot(t, t.TempDir(), "")
	base := "http://" + a.Addr()
	r := call(t, "GET", base+"/hooks/alertmanager", "", nil)
	if r.status != 405 || r.header.Get("Allow") == "" || !strings.Contains(string(r.body), "use POST") {
		t.Fatalf("GET on a hook = %d %v %s, want a JSON 405 saying to POST", r.status, r.header, r.body)
	}
	if r := call(t, "GET", base+"/nope", "", nil); r.status != 404 || !strings.Contains(string(r.body), `"error"`) {
		t.Fatalf("unknown path = %d %s", r.status, r.body)
	}
}

// eachOnATimeline waits until every acknowledged event ID is on exactly
// one timeline entry: nothing lost, nothing doubled.
func eachOnATimeline(t *testing.T, a *app.App, acked map[string]bool, limit time.Duration) {
	t.Helper()
	eventuallyWithin(t, limit, "every acknowledged event on exactly one timeline entry", func() bool {
		seen := map[string]int{}
		for _, inc := range incidents(t, a) {
			for _, e := range inc.Timeline {
				seen[e.ID]++
			}
		}
		for id := range acked {
			if seen[id] != 1 {
				return false
			}
		}
		return true
	})
}
