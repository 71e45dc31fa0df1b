package correlate_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// firing is an alert.firing event for fingerprint fp starting at start
// (minutes after t0), received recv minutes after t0.
func firing(fp, name string, start, recv int, labels ...string) hindsight.Event {
	l := map[string]string{"alertname": name, "service": "checkout", "severity": "warning"}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return hindsight.Event{
		ID: hindsight.AlertEventID(fp, at(start), "firing"), Kind: hindsight.KindAlertFiring, Source: hindsight.SourceAlertmanager,
		Time: at(start), ReceivedAt: at(recv), Service: l["service"], Labels: l, Summary: name + " summary",
		Alert: &hindsight.AlertDetails{Name: name, Fingerprint: fp, StartsAt: at(start)},
	}
}

func resolved(fp, name string, start, end int, labels ...string) hindsight.Event {
	e := firing(fp, name, start, end, labels...)
	e.ID = hindsight.AlertEventID(fp, at(start), "resolved")
	e.Kind, e.Time = hindsight.KindAlertResolved, at(end)
	e.Alert.EndsAt = at(end)
	return e
}

func deploy(service, version, status string, when int) hindsight.Event {
	d := hindsight.DeployDetails{Version: version, Status: status}
	kind, _ := hindsight.DeployKind(status)
	return hindsight.Event{
		ID: hindsight.DeployEventID(d, service, at(when)), Kind: kind, Source: hindsight.SourceDeploy,
		Time: at(when), ReceivedAt: at(when), Service: service, Summary: "deploy " + service + " " + version + " " + status,
		Deploy: &d,
	}
}

func note(id, key, anchor string, when int) hindsight.Event {
	return hindsight.Event{ID: id, Kind: hindsight.KindNote, Source: hindsight.SourceNote, Time: at(when), ReceivedAt: at(when),
		Summary: "note " + id, Note: &hindsight.NoteDetails{IncidentID: "x", Key: key, Anchor: anchor, Text: "note " + id}}
}

func occ(fp string, start int) string {
	d := hindsight.AlertDetails{Fingerprint: fp, StartsAt: at(start)}
	return d.OccurrenceID()
}

// shape is what a test checks of an incident.
type shape struct {
	start, end  int // end -1: open
	alerts      int
	entries     []hindsight.Kind
	suspects    []string // versions, nearest first
	reopened    int
	severity    string
	ttdKnown    bool
	ttdMinutes  float64
	anchorFP    string
	anchorStart int
}

func TestFold(t *testing.T) {
	cfg := correlate.DefaultConfig()
	F, R := hindsight.KindAlertFiring, hindsight.KindAlertResolved
	DS, DR, N := hindsight.KindDeploySucceeded, hindsight.KindDeployRolledBack, hindsight.KindNote
	for _, tc := range []struct {
		name   string
		events []hindsight.Event
		want   []shape
	}{
		{
			name:   "one firing alert opens an incident",
			events: []hindsight.Event{firing("a", "HighLatency", 0, 1)},
			want:   []shape{{start: 0, end: -1, alerts: 1, entries: []hindsight.Kind{F}, severity: "warning", ttdKnown: true, ttdMinutes: 1, anchorFP: "a"}},
		},
		{
			name: "repeats of a firing alert add nothing",
			events: []hindsight.Event{firing("a", "HighLatency", 0, 1), firing("a", "HighLatency", 0, 5),
				firing("a", "HighLatency", 0, 65)},
			want: []shape{{start: 0, end: -1, alerts: 1, entries: []hindsight.Kind{F}, severity: "warning", ttdKnown: true, ttdMinutes: 1, anchorFP: "a"}},
		},
		{
			name: "resolves when every alert resolved, at the latest endsAt",
			events: []hindsight.Event{firing("a", "HighLatency", 0, 0), firing("b", "HighErrorRate", 2, 2, "severity", "critical"),
				resolved("a", "HighLatency", 0, 20), resolved("b", "HighErrorRate", 2, 15, "severity", "critical")},
			want: []shape{{start: 0, end: 20, alerts: 2, entries: []hindsight.Kind{F, F, R, R}, severity: "critical", ttdKnown: true, anchorFP: "a"}},
		},
		{
			name:   "resolved implies fired when the firing never arrived",
			events: []hindsight.Event{resolved("a", "HighLatency", 0, 20)},
			want:   []shape{{start: 0, end: 20, alerts: 1, entries: []hindsight.Kind{F, R}, severity: "warning", anchorFP: "a"}},
		},
		{
			name:   "a stale firing repeat does not reopen a resolved occurrence",
			events: []hindsight.Event{firing("a", "X", 0, 0), resolved("a", "X", 0, 10), firing("a", "X", 0, 30)},
			want:   []shape{{start: 0, end: 10, alerts: 1, entries: []hindsight.Kind{F, R}, severity: "warning", ttdKnown: true, anchorFP: "a"}},
		},
		{
			name: "flapping within the reopen window reopens the same incident",
			events: []hindsight.Event{firing("a", "X", 0, 0), resolved("a", "X", 0, 5),
				firing("a", "X", 9, 9), resolved("a", "X", 9, 12)},
			want: []shape{{start: 0, end: 12, alerts: 2, entries: []hindsight.Kind{F, R, F, R}, reopened: 1, severity: "warning", ttdKnown: true, anchorFP: "a"}},
		},
		{
			name: "a new alert after the reopen window is a new incident",
			events: []hindsight.Event{firing("a", "X", 0, 0), resolved("a", "X", 0, 5),
				firing("a", "X", 15, 15)},
			want: []shape{
				{start: 0, end: 5, alerts: 1, entries: []hindsight.Kind{F, R}, severity: "warning", ttdKnown: true, anchorFP: "a"},
				{start: 15, end: -1, alerts: 1, entries: []hindsight.Kind{F}, severity: "warning", ttdKnown: true, anchorFP: "a", anchorStart: 15},
			},
		},
		{
			name: "a gap of exactly the reopen window splits",
			events: []hindsight.Event{firing("a", "X", 0, 0), resolved("a", "X", 0, 5),
				firing("b", "Y", 15, 15), resolved("b", "Y", 15, 16)},
			want: []shape{
				{start: 0, end: 5, alerts: 1, entries: []hindsight.Kind{F, R}, severity: "warning", ttdKnown: true, anchorFP: "a"},
				{start: 15, end: 16, alerts: 1, entries: []hindsight.Kind{F, R}, severity: "warning", ttdKnown: true, anchorFP: "b", anchorStart: 15},
			},
		},
		{
			name: "a late alert bridging two incidents merges them",
			events: []hindsight.Event{firing("a", "X", 0, 0), resolved("a", "X", 0, 5),
				firing("b", "Y", 30, 30), resolved("b", "Y", 30, 35),
				resolved("c", "Z", 4, 32)}, // active 4..32, arrived last
			want: []shape{{start: 0, end: 35, alerts: 3, entries: []hindsight.Kind{F, F, R, F, R, R}, severity: "warning", ttdKnown: true, anchorFP: "a"}},
		},
		{
			name:   "a late alert that starts earlier takes the incident's start",
			events: []hindsight.Event{firing("b", "Y", 10, 10), firing("a", "X", 2, 12)},
			want:   []shape{{start: 2, end: -1, alerts: 2, entries: []hindsight.Kind{F, F}, severity: "warning", ttdKnown: true, ttdMinutes: 8, anchorFP: "a", anchorStart: 2}},
		},
		{
			name: "deploys before the start are suspected, nearest first; during the incident they join the timeline",
			events: []hindsight.Event{
				deploy("checkout", "v1", "succeeded", -90), // outside the lookback
				deploy("checkout", "v2", "succeeded", -40),
				deploy("checkout", "v3", "succeeded", -12),
				firing("a", "X", 0, 1),
				deploy("checkout", "v2", "rolled_back", 20),
				resolved("a", "X", 0, 25),
				deploy("checkout", "v2", "succeeded", 30), // just after the end
				deploy("checkout", "v4", "succeeded", 60), // long after the end
			},
			want: []shape{{start: 0, end: 25, alerts: 1, entries: []hindsight.Kind{DS, DS, F, DR, R, DS}, suspects: []string{"v3", "v2"}, severity: "warning", ttdKnown: true, ttdMinutes: 1, anchorFP: "a"}},
		},
		{
			name:   "a deploy that arrived before any alert is still linked",
			events: []hindsight.Event{deploy("checkout", "v3", "succeeded", -12)},
			want:   nil,
		},
		{
			name: "notes follow the incident by its anchor",
			events: []hindsight.Event{firing("a", "X", 0, 0), note("n1", "checkout", occ("a", 0), 3),
				note("n2", "checkout", occ("zz", 0), 4)}, // anchor unknown: not placed
			want: []shape{{start: 0, end: -1, alerts: 1, entries: []hindsight.Kind{F, N}, severity: "warning", ttdKnown: true, anchorFP: "a"}},
		},
		{
			name:   "a backfill leaves time to detect unknown",
			events: []hindsight.Event{firing("a", "X", 0, 120), resolved("a", "X", 0, 30)},
			want:   []shape{{start: 0, end: 30, alerts: 1, entries: []hindsight.Kind{F, R}, severity: "warning", anchorFP: "a"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "a deploy that arrived before any alert is still linked" {
				// Kept by the store; a later alert links it (checked below).
				got := cfg.FoldStream(append(tc.events, firing("a", "X", 0, 0)))
				if len(got) != 1 || len(got[0].SuspectedChanges) != 1 || got[0].SuspectedChanges[0].Version != "v3" {
					t.Fatalf("got %+v, want one incident suspecting v3", got)
				}
				return
			}
			got := cfg.FoldStream(tc.events)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d incidents, want %d: %s", len(got), len(tc.want), dump(got))
			}
			for i, w := range tc.want {
				checkShape(t, &got[i], w)
			}
		})
	}
}

func checkShape(t *testing.T, inc *hindsight.Incident, w shape) {
	t.Helper()
	if !inc.StartedAt.Equal(at(w.start)) {
		t.Errorf("started_at = %s, want %s", inc.StartedAt, at(w.start))
	}
	if w.end < 0 {
		if inc.Status != hindsight.StatusOpen || inc.ResolvedAt != nil {
			t.Errorf("status = %s resolved_at = %v, want open", inc.Status, inc.ResolvedAt)
		}
	} else if inc.Status != hindsight.StatusResolved || inc.ResolvedAt == nil || !inc.ResolvedAt.Equal(at(w.end)) {
		t.Errorf("status = %s resolved_at = %v, want resolved at %s", inc.Status, inc.ResolvedAt, at(w.end))
	}
	if len(inc.Alerts) != w.alerts {
		t.Errorf("alerts = %d, want %d", len(inc.Alerts), w.alerts)
	}
	var kinds []hindsight.Kind
	for i, e := range inc.Timeline {
		kinds = append(kinds, e.Kind)
		if i > 0 && e.Time.Before(inc.Timeline[i-1].Time) {
			t.Errorf("timeline out of order at %d", i)
		}
		if e.Reason == "" || e.ID == "" {
			t.Errorf("entry %d has no reason or id: %+v", i, e)
		}
	}
	if !reflect.DeepEqual(kinds, w.entries) {
		t.Errorf("timeline kinds = %v, want %v", kinds, w.entries)
	}
	var versions []string
	for _, s := range inc.SuspectedChanges {
		versions = append(versions, s.Version)
		if s.Reason == "" {
			t.Errorf("suspected change %s has no reason", s.Version)
		}
	}
	if !reflect.DeepEqual(versions, w.suspects) {
		t.Errorf("suspected = %v, want %v", versions, w.suspects)
	}
	if inc.Reopened != w.reopened {
		t.Errorf("reopened = %d, want %d", inc.Reopened, w.reopened)
	}
	if inc.Severity != w.severity {
		t.Errorf("severity = %q, want %q", inc.Severity, w.severity)
	}
	if (inc.TimeToDetect != nil) != w.ttdKnown {
		t.Errorf("time to detect known = %v, want %v", inc.TimeToDetect != nil, w.ttdKnown)
	} else if w.ttdKnown && inc.TimeToDetect.Duration() != time.Duration(w.ttdMinutes*float64(time.Minute)) {
		t.Errorf("time to detect = %s, want %vm", inc.TimeToDetect.Duration(), w.ttdMinutes)
	}
	if want := correlate.IncidentID("checkout", occ(w.anchorFP, w.anchorStart)); inc.ID != want {
		t.Errorf("id = %s, want %s (anchored on %s@%d)", inc.ID, want, w.anchorFP, w.anchorStart)
	}
	if len(inc.Lifecycle) == 0 || inc.Lifecycle[0].Status != "opened" {
		t.Errorf("lifecycle = %+v, want it to start with opened", inc.Lifecycle)
	}
}

// The same set of events gives byte-identical incidents whatever the
// order they arrive in, duplicates included.
func TestFoldIgnoresArrivalOrder(t *testing.T) {
	cfg := correlate.DefaultConfig()
	events := []hindsight.Event{
		deploy("checkout", "v3", "succeeded", -12), deploy("checkout", "v3", "started", -15),
		firing("a", "X", 0, 1), firing("b", "Y", 3, 3, "severity", "critical"), resolved("a", "X", 0, 8),
		firing("a", "X", 0, 9), resolved("b", "Y", 3, 12), firing("a", "X", 14, 14), resolved("a", "X", 14, 18),
		firing("c", "Z", 60, 60), deploy("checkout", "v2", "rolled_back", 61), resolved("c", "Z", 60, 70),
		note("n1", "checkout", occ("a", 0), 5), firing("d", "W", 200, 201),
	}
	want := dump(cfg.FoldStream(events))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		perm := append([]hindsight.Event(nil), events...)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		perm = append(perm, perm[:rng.IntN(len(perm))]...) // redeliveries
		if got := dump(cfg.FoldStream(perm)); got != want {
			t.Fatalf("permutation %d gave different incidents:\ngot  %s\nwant %s", i, got, want)
		}
	}
}

func TestKey(t *testing.T) {
	cfg := correlate.DefaultConfig()
	for _, tc := range []struct {
		name string
		e    hindsight.Event
		want string
	}{
		{"service label", firing("a", "X", 0, 0), "checkout"},
		{"job when no service", func() hindsight.Event {
			e := firing("a", "X", 0, 0)
			delete(e.Labels, "service")
			e.Labels["job"] = "node"
			return e
		}(), "node"},
		{"group key when neither", func() hindsight.Event {
			e := firing("a", "X", 0, 0)
			delete(e.Labels, "service")
			e.Alert.GroupKey = `{}:{alertname="X"}`
			return e
		}(), `{}:{alertname="X"}`},
		{"deploy service", deploy("payments", "v1", "succeeded", 0), "payments"},
		{"note key", note("n", "checkout", "x", 0), "checkout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p := cfg.Place(&tc.e); p.Key != tc.want || p.Why == "" {
				t.Fatalf("Place = %q (%q), want %q with a reason", p.Key, p.Why, tc.want)
			}
		})
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
