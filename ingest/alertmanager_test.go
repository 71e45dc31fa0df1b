package ingest_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

const fixtureToken = "s3cret-token" // from testdata/alertmanager-0.25/alertmanager.yml

var (
	latencyStart = time.Date(2026, 11, 22, 4, 8, 14, 0, time.UTC)
	errorsStart  = time.Date(2026, 11, 22, 4, 9, 18, 0, time.UTC)
	resolvedAt   = time.Date(2026, 11, 22, 4, 10, 26, 0, time.UTC)
)

const (
	latencyFP = "f78816deac5e68e9"
	errorsFP  = "4b765cb7321b0cae"
)

// TestAlertmanagerReplay replays real Alertmanager 0.25 notifications, in
// the order it sent them, through one server.
func TestAlertmanagerReplay(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{Auth: ingest.AuthConfig{Alertmanager: ingest.Credentials{BearerToken: fixtureToken}}})
	url := srv.URL + "/hooks/alertmanager"
	auth := map[string]string{"Authorization": "Bearer " + fixtureToken, "User-Agent": "Alertmanager/0.25.0"}

	latencyFiring := hindsight.AlertEventID(latencyFP, latencyStart, "firing")
	errorsFiring := hindsight.AlertEventID(errorsFP, errorsStart, "firing")
	latencyResolved := hindsight.AlertEventID(latencyFP, latencyStart, "resolved")
	errorsResolved := hindsight.AlertEventID(errorsFP, errorsStart, "resolved")

	steps := []struct {
		file       string
		events     []string
		duplicates int
	}{
		{"01-first-firing.json", []string{latencyFiring}, 0},
		{"02-second-alert-joins.json", []string{latencyFiring, errorsFiring}, 1},
		{"03-repeat.json", []string{latencyFiring, errorsFiring}, 2},
		{"04-resolved.json", []string{latencyResolved, errorsResolved}, 0},
	}
	answers := map[string][]string{}
	for _, st := range steps {
		r := post(t, url, fixture(t, st.file), auth)
		if r.status != 200 {
			t.Fatalf("%s: status %d (%s), want 200", st.file, r.status, r.raw)
		}
		if !slices.Equal(r.ok.Events, st.events) {
			t.Errorf("%s: events %v, want %v", st.file, r.ok.Events, st.events)
		}
		if r.ok.Accepted != len(st.events) || r.ok.Duplicates != st.duplicates || len(r.ok.Rejected) != 0 {
			t.Errorf("%s: accepted %d duplicates %d rejected %v, want %d, %d, none", st.file, r.ok.Accepted, r.ok.Duplicates, r.ok.Rejected, len(st.events), st.duplicates)
		}
		answers[st.file] = r.ok.Events
	}
	if !slices.Equal(answers["03-repeat.json"], answers["02-second-alert-joins.json"]) {
		t.Errorf("repeat gave IDs %v, want those of 02: %v", answers["03-repeat.json"], answers["02-second-alert-joins.json"])
	}

	got := pub.published()
	want := []struct {
		id   string
		kind hindsight.Kind
		time time.Time
	}{
		{latencyFiring, hindsight.KindAlertFiring, latencyStart},
		{errorsFiring, hindsight.KindAlertFiring, errorsStart},
		{latencyResolved, hindsight.KindAlertResolved, resolvedAt},
		{errorsResolved, hindsight.KindAlertResolved, resolvedAt},
	}
	if len(got) != len(want) {
		t.Fatalf("stream holds %d events %v, want %d", len(got), eventIDs(got), len(want))
	}
	for i, w := range want {
		ev := got[i]
		if ev.ID != w.id || ev.Kind != w.kind || !ev.Time.Equal(w.time) || ev.Time.Location() != time.UTC {
			t.Errorf("event %d: %s %s at %v, want %s %s at %v UTC", i, ev.ID, ev.Kind, ev.Time, w.id, w.kind, w.time)
		}
		if w.kind == hindsight.KindAlertResolved && !ev.Alert.EndsAt.Equal(resolvedAt) {
			t.Errorf("event %d: endsAt %v, want %v", i, ev.Alert.EndsAt, resolvedAt)
		}
		if w.kind == hindsight.KindAlertFiring && !ev.Alert.EndsAt.IsZero() {
			t.Errorf("event %d: firing alert has endsAt %v, want zero", i, ev.Alert.EndsAt)
		}
	}
}

// TestAlertmanagerEventFields checks every field of the first real event.
func TestAlertmanagerEventFields(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{})
	r := post(t, srv.URL+"/hooks/alertmanager", fixture(t, "01-first-firing.json"), nil)
	if r.status != 200 {
		t.Fatalf("status %d (%s), want 200", r.status, r.raw)
	}
	if strings.Contains(r.raw, "rejected") {
		t.Errorf("answer %s mentions rejected, want it left out when empty", r.raw)
	}
	got := pub.published()
	labels := map[string]string{
		"alertname": "HighLatency", "instance": "checkout-7d9f:8080", "job": "checkout",
		"namespace": "shop", "service": "checkout", "severity": "critical",
	}
	want := []hindsight.Event{{
		ID:         hindsight.AlertEventID(latencyFP, latencyStart, "firing"),
		Kind:       hindsight.KindAlertFiring,
		Source:     hindsight.SourceAlertmanager,
		Time:       latencyStart,
		ReceivedAt: receivedAt,
		Service:    "checkout",
		Labels:     labels,
		Summary:    "p99 latency above 2s on checkout",
		Alert: &hindsight.AlertDetails{
			Name:        "HighLatency",
			Fingerprint: latencyFP,
			StartsAt:    latencyStart,
			Annotations: map[string]string{
				"description": "p99 latency is 3.4s (threshold 2s)",
				"runbook_url": "https://runbooks.example.com/checkout/latency",
				"summary":     "p99 latency above 2s on checkout",
			},
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=histogram_quantile%280.99%2C+rate%28http_request_duration_seconds_bucket%7Bservice%3D%22checkout%22%7D%5B5m%5D%29%29+%3E+2",
			GroupKey:     `{}:{service="checkout"}`,
			Receiver:     "hindsight",
			ExternalURL:  "http://vm:19093",
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("published\n%+v\nwant\n%+v", got, want)
	}
	if got[0].ReceivedAt.Location() != time.UTC {
		t.Errorf("received_at in %v, want UTC", got[0].ReceivedAt.Location())
	}
}

// alert builds one alert of a test notification.
func alert(status, startsAt, endsAt string, labels map[string]string, annotations map[string]string) map[string]any {
	a := map[string]any{"status": status, "labels": labels, "annotations": annotations, "generatorURL": "http://prom/graph"}
	if startsAt != "" {
		a["startsAt"] = startsAt
	}
	if endsAt != "" {
		a["endsAt"] = endsAt
	}
	return a
}

// notification builds a version 4 webhook body.
func notification(alerts ...map[string]any) map[string]any {
	return map[string]any{
		"version": "4", "receiver": "hindsight", "status": "firing", "alerts": alerts,
		"groupKey": `{}:{service="api"}`, "externalURL": "http://am:9093", "truncatedAlerts": 0,
	}
}

const zeroTime = "0001-01-01T00:00:00Z"

var apiLabels = map[string]string{"alertname": "Down", "service": "api", "severity": "page"}

// goodAlert is a usable alert of another series than the test cases'.
func goodAlert() map[string]any {
	return alert("firing", "2026-11-22T03:00:00Z", zeroTime, map[string]string{"alertname": "Down", "service": "web"}, map[string]string{"summary": "api is down"})
}

// TestAlertmanagerAlerts covers single alerts that are usable, unusable
// beside a usable one (the good one is kept, 200), and unusable alone (400).
func TestAlertmanagerAlerts(t *testing.T) {
	start := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		alert   map[string]any
		wantErr string // substring of the rejection; "" for a usable alert
		check   func(t *testing.T, ev hindsight.Event)
	}{
		{
			name:  "fingerprint computed like Alertmanager when missing",
			alert: alert("firing", "2026-11-22T04:08:14Z", zeroTime, map[string]string{"alertname": "HighLatency", "instance": "checkout-7d9f:8080", "job": "checkout", "namespace": "shop", "service": "checkout", "severity": "critical"}, nil),
			check: func(t *testing.T, ev hindsight.Event) {
				if ev.Alert.Fingerprint != latencyFP {
					t.Errorf("fingerprint %q, want %q (Alertmanager's)", ev.Alert.Fingerprint, latencyFP)
				}
				if want := hindsight.AlertEventID(latencyFP, latencyStart, "firing"); ev.ID != want {
					t.Errorf("ID %s, want %s", ev.ID, want)
				}
			},
		},
		{
			name:  "time zone offset normalised to UTC, same ID",
			alert: alert("firing", "2026-11-22T06:00:00+02:00", zeroTime, apiLabels, nil),
			check: func(t *testing.T, ev hindsight.Event) {
				if !ev.Time.Equal(start) || ev.Time.Location() != time.UTC || ev.Alert.StartsAt.Location() != time.UTC {
					t.Errorf("time %v (starts %v), want %v UTC", ev.Time, ev.Alert.StartsAt, start)
				}
			},
		},
		{
			name:  "firing endsAt in the future is ignored",
			alert: alert("firing", "2026-11-22T04:00:00Z", "2026-11-22T04:04:00Z", apiLabels, nil),
			check: func(t *testing.T, ev hindsight.Event) {
				if !ev.Alert.EndsAt.IsZero() || !ev.Time.Equal(start) {
					t.Errorf("time %v endsAt %v, want %v and zero", ev.Time, ev.Alert.EndsAt, start)
				}
			},
		},
		{
			name:  "summary falls back to description",
			alert: alert("firing", "2026-11-22T04:00:00Z", zeroTime, apiLabels, map[string]string{"description": "no healthy pods\nsee runbook"}),
			check: func(t *testing.T, ev hindsight.Event) {
				if ev.Summary != "no healthy pods…" {
					t.Errorf("summary %q, want the description's first line", ev.Summary)
				}
			},
		},
		{
			name:  "summary falls back to alertname, service to job",
			alert: alert("firing", "2026-11-22T04:00:00Z", zeroTime, map[string]string{"alertname": "Down", "job": "api-job"}, nil),
			check: func(t *testing.T, ev hindsight.Event) {
				if ev.Summary != "Down" || ev.Service != "api-job" || ev.Alert.Name != "Down" {
					t.Errorf("summary %q service %q name %q, want Down, api-job, Down", ev.Summary, ev.Service, ev.Alert.Name)
				}
			},
		},
		{
			name:  "resolved at endsAt",
			alert: alert("resolved", "2026-11-22T04:00:00Z", "2026-11-22T04:24:00Z", apiLabels, nil),
			check: func(t *testing.T, ev hindsight.Event) {
				end := start.Add(24 * time.Minute)
				if ev.Kind != hindsight.KindAlertResolved || !ev.Time.Equal(end) || !ev.Alert.EndsAt.Equal(end) {
					t.Errorf("%s at %v endsAt %v, want resolved at %v", ev.Kind, ev.Time, ev.Alert.EndsAt, end)
				}
				if want := hindsight.AlertEventID(ev.Alert.Fingerprint, start, "resolved"); ev.ID != want {
					t.Errorf("ID %s, want %s", ev.ID, want)
				}
			},
		},
		{name: "missing startsAt", alert: alert("firing", "", zeroTime, apiLabels, nil), wantErr: "startsAt is missing"},
		{name: "zero startsAt", alert: alert("firing", zeroTime, zeroTime, apiLabels, nil), wantErr: "startsAt is missing"},
		{name: "unknown status", alert: alert("pending", "2026-11-22T04:00:00Z", zeroTime, apiLabels, nil), wantErr: `status "pending"`},
		{name: "resolved without endsAt", alert: alert("resolved", "2026-11-22T04:00:00Z", zeroTime, apiLabels, nil), wantErr: "no endsAt"},
		{name: "resolved before it started", alert: alert("resolved", "2026-11-22T04:00:00Z", "2026-11-22T03:00:00Z", apiLabels, nil), wantErr: "before startsAt"},
		{name: "no labels", alert: alert("firing", "2026-11-22T04:00:00Z", zeroTime, nil, nil), wantErr: "no labels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("beside a good alert", func(t *testing.T) {
				srv, pub := newServer(t, ingest.Options{})
				r := post(t, srv.URL+"/hooks/alertmanager", mustJSON(t, notification(goodAlert(), tc.alert)), nil)
				if r.status != 200 {
					t.Fatalf("status %d (%s), want 200", r.status, r.raw)
				}
				got := pub.published()
				if tc.wantErr == "" {
					if r.ok.Accepted != 2 || len(got) != 2 || len(r.ok.Rejected) != 0 {
						t.Fatalf("accepted %d published %d rejected %v, want 2, 2, none", r.ok.Accepted, len(got), r.ok.Rejected)
					}
					tc.check(t, got[1])
					return
				}
				if r.ok.Accepted != 1 || len(got) != 1 || got[0].Summary != "api is down" {
					t.Errorf("accepted %d published %v, want only the good alert", r.ok.Accepted, got)
				}
				if len(r.ok.Rejected) != 1 || r.ok.Rejected[0].Index != 1 || !strings.Contains(r.ok.Rejected[0].Error, tc.wantErr) {
					t.Errorf("rejected %+v, want index 1 with %q", r.ok.Rejected, tc.wantErr)
				}
			})
			if tc.wantErr == "" {
				return
			}
			t.Run("alone", func(t *testing.T) {
				srv, pub := newServer(t, ingest.Options{})
				r := post(t, srv.URL+"/hooks/alertmanager", mustJSON(t, notification(tc.alert)), nil)
				if r.status != 400 || !strings.Contains(r.err.Error, tc.wantErr) {
					t.Errorf("status %d error %q, want 400 with %q", r.status, r.err.Error, tc.wantErr)
				}
				if len(r.err.Rejected) != 1 || r.err.Rejected[0].Index != 0 {
					t.Errorf("rejected %+v, want index 0", r.err.Rejected)
				}
				if n := pub.callCount(); n != 0 {
					t.Errorf("published %d times, want 0", n)
				}
			})
		})
	}
}
