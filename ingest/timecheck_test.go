package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight/ingest"
)

// Event times more than an hour in Hindsight's future, or before 2000,
// are rejected with a message naming the field; backfills are accepted.
func TestImplausibleTimes(t *testing.T) {
	ts := func(d time.Duration) string { return receivedAt.Add(d).UTC().Format(time.RFC3339) }
	alert := func(status, starts, ends string) string {
		return fmt.Sprintf(`{"version":"4","status":%q,"receiver":"r","groupKey":"g","alerts":[{"status":%q,"labels":{"alertname":"X","service":"s"},"startsAt":%q,"endsAt":%q,"fingerprint":"f"}]}`,
			status, status, starts, ends)
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
		mention          string
	}{
		{"alert starting tomorrow", amPath, alert("firing", ts(24*time.Hour), "0001-01-01T00:00:00Z"), 400, "startsAt"},
		{"alert starting in 59 minutes (skew)", amPath, alert("firing", ts(59*time.Minute), "0001-01-01T00:00:00Z"), 200, ""},
		{"alert from 1970", amPath, alert("firing", "1970-01-01T00:00:01Z", "0001-01-01T00:00:00Z"), 400, "startsAt"},
		{"alert resolving next week", amPath, alert("resolved", ts(-time.Hour), ts(7*24*time.Hour)), 400, "endsAt"},
		{"backfilled alert from last year", amPath, alert("resolved", ts(-365*24*time.Hour), ts(-364*24*time.Hour)), 200, ""},
		{"deploy next year", deployPath, fmt.Sprintf(`{"service":"s","status":"started","time":%q}`, ts(365*24*time.Hour)), 400, "time"},
		{"deploy in 1999", deployPath, `{"service":"s","status":"started","time":"1999-12-31T23:59:59Z"}`, 400, "time"},
		{"note from the future", notesPath, fmt.Sprintf(`{"text":"x","time":%q}`, ts(2*time.Hour)), 400, "time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{})
			r := post(t, srv.URL+tc.path, []byte(tc.body), nil)
			if r.status/100 != tc.status/100 {
				t.Fatalf("status %d (%s), want %d", r.status, r.raw, tc.status)
			}
			if tc.status >= 400 {
				if !strings.Contains(r.err.Error, tc.mention) {
					t.Fatalf("error %q does not name %q", r.err.Error, tc.mention)
				}
				if n := len(pub.published()); n != 0 {
					t.Fatalf("published %d events for a rejected request", n)
				}
			}
		})
	}
}

// One alert with an unparseable time does not cost its neighbours: they
// are recorded and the bad one is reported (Alertmanager would resend the
// group forever after a 4xx).
func TestBadAlertTimeKeepsTheOthers(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{})
	body := `{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[
		{"status":"firing","labels":{"alertname":"Good","service":"s"},"startsAt":"2026-11-22T04:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"g1"},
		{"status":"firing","labels":{"alertname":"Bad","service":"s"},"startsAt":"not-a-time","fingerprint":"b1"}]}`
	r := post(t, srv.URL+amPath, []byte(body), nil)
	if r.status != 200 || r.ok.Accepted != 1 || len(r.ok.Rejected) != 1 || r.ok.Rejected[0].Index != 1 ||
		!strings.Contains(r.ok.Rejected[0].Error, "startsAt") {
		t.Fatalf("got %d %s; want 200 with alert 0 accepted and alert 1 rejected for its startsAt", r.status, r.raw)
	}
	if n := len(pub.published()); n != 1 {
		t.Fatalf("published %d events, want 1", n)
	}
}

// Deeply nested JSON is refused with a 400, not a crash or a stack
// overflow, and nothing is published.
func TestDeepNesting(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 100000) + `1` + strings.Repeat(`}`, 100000)
	for _, tc := range []struct{ name, path, body string }{
		{"alertmanager annotations", amPath, `{"version":"4","alerts":[{"labels":{"x":"y"},"annotations":` + deep + `}]}`},
		{"deploy description", deployPath, `{"service":"s","status":"started","description":` + deep + `}`},
		{"nested arrays", deployPath, strings.Repeat("[", 200000) + strings.Repeat("]", 200000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{})
			r := post(t, srv.URL+tc.path, []byte(tc.body), nil)
			if r.status != 400 || r.err.Error == "" {
				t.Fatalf("status %d %.200s, want 400 with a message", r.status, r.raw)
			}
			if n := len(pub.published()); n != 0 {
				t.Fatalf("published %d events", n)
			}
		})
	}
}
