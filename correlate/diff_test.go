package correlate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
)

// Helpers of their own, so the scenario tests can change theirs.
var diffT0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func diffAt(min int) time.Time { return diffT0.Add(time.Duration(min) * time.Minute) }

// diffAlert is an alert occurrence of service starting at start (minutes
// after diffT0), resolved at end (-1: still firing): its events.
func diffAlert(fp, name, service string, start, end int, labels ...string) []hindsight.Event {
	l := map[string]string{"alertname": name, "service": service, "severity": "warning"}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	f := hindsight.Event{
		ID: hindsight.AlertEventID(fp, diffAt(start), "firing"), Kind: hindsight.KindAlertFiring, Source: hindsight.SourceAlertmanager,
		Time: diffAt(start), ReceivedAt: diffAt(start + 1), Service: service, Labels: l, Summary: name + " on " + service,
		Alert: &hindsight.AlertDetails{Name: name, Fingerprint: fp, StartsAt: diffAt(start)},
	}
	if end < 0 {
		return []hindsight.Event{f}
	}
	r := f
	r.Alert = &hindsight.AlertDetails{Name: name, Fingerprint: fp, StartsAt: diffAt(start), EndsAt: diffAt(end)}
	r.ID, r.Kind, r.Time, r.ReceivedAt = hindsight.AlertEventID(fp, diffAt(start), "resolved"), hindsight.KindAlertResolved, diffAt(end), diffAt(end)
	return []hindsight.Event{f, r}
}

func diffDeploy(service, version string, when int) hindsight.Event {
	d := hindsight.DeployDetails{Version: version, Status: "succeeded"}
	return hindsight.Event{
		ID: hindsight.DeployEventID(d, service, diffAt(when)), Kind: hindsight.KindDeploySucceeded, Source: hindsight.SourceDeploy,
		Time: diffAt(when), ReceivedAt: diffAt(when), Service: service, Summary: "deploy " + version, Deploy: &d,
	}
}

func events(groups ...[]hindsight.Event) []hindsight.Event { return slices.Concat(groups...) }

func eq(name, value string) *labels.Matcher {
	m, err := labels.NewMatcher(labels.MatchEqual, name, value)
	if err != nil {
		panic(err)
	}
	return m
}

// diffWant is what a test checks of a DiffReport: the counts, and each
// list as lines of IDs-free text (incident titles and whys).
type diffWant struct {
	counts         correlate.DiffCounts
	merged         []string // "into title <- from title, from title"
	split          []string // "from title -> into title, into title"
	newlyOpened    []string // "title: why"
	noLongerOpened []string // "title: why"
	changed        []string // "title: field old -> new; ..."
	suspectMoved   []string // "title: old -> new" (versions, "none")
	reason         string   // in the first no-longer- or newly-opened entry's reason
}

func TestDiff(t *testing.T) {
	def := correlate.DefaultConfig()
	with := func(f func(*correlate.Config)) correlate.Config {
		c := correlate.DefaultConfig()
		f(&c)
		return c
	}
	checkoutTwice := events(
		diffAlert("c1", "HighLatency", "checkout", 10, 15),
		diffAlert("c2", "ErrorRate", "checkout", 40, 45),
	)
	for _, tc := range []struct {
		name       string
		events     []hindsight.Event
		base, cand correlate.Config
		want       diffWant
	}{
		{
			name:   "same config: no change",
			events: events(checkoutTwice, diffAlert("p1", "Saturation", "payments", 12, -1), []hindsight.Event{diffDeploy("checkout", "v1", 5)}),
			base:   def, cand: def,
			want: diffWant{counts: correlate.DiffCounts{Base: 3, Candidate: 3, Unchanged: 3}},
		},
		{
			name:   "a longer reopen window merges",
			events: checkoutTwice,
			base:   def, cand: with(func(c *correlate.Config) { c.ReopenWindow = 30 * time.Minute }),
			want: diffWant{
				counts: correlate.DiffCounts{Base: 2, Candidate: 1, Merged: 1},
				merged: []string{"HighLatency on checkout (+1 more alert) <- HighLatency on checkout, ErrorRate on checkout"},
			},
		},
		{
			name:   "a shorter reopen window splits",
			events: checkoutTwice,
			base:   with(func(c *correlate.Config) { c.ReopenWindow = 30 * time.Minute }), cand: def,
			want: diffWant{
				counts: correlate.DiffCounts{Base: 1, Candidate: 2, Split: 1},
				split:  []string{"HighLatency on checkout (+1 more alert) -> HighLatency on checkout, ErrorRate on checkout"},
			},
		},
		{
			name: "a rule keyed by cluster merges two services",
			events: events(
				diffAlert("c1", "HighLatency", "checkout", 10, 30, "cluster", "eu1"),
				diffAlert("p1", "ErrorRate", "payments", 12, 25, "cluster", "eu1", "severity", "critical"),
				diffAlert("s1", "DiskFull", "search", 60, 70, "cluster", "us1"),
			),
			base: def,
			cand: with(func(c *correlate.Config) {
				c.Rules = []correlate.Rule{{Name: "eu1", Match: []*labels.Matcher{eq("cluster", "eu1")}, Key: []string{"cluster"}}}
			}),
			want: diffWant{
				counts: correlate.DiffCounts{Base: 3, Candidate: 2, Merged: 1, Unchanged: 1},
				merged: []string{"ErrorRate on checkout (+1 more alert) in cluster eu1 <- HighLatency on checkout, ErrorRate on payments"},
			},
		},
		{
			name:   "open_after suppresses a blip that resolved",
			events: events(checkoutTwice, diffAlert("p1", "Saturation", "payments", 12, 20), diffAlert("p2", "Errors", "payments", 14, 22)),
			base:   def,
			cand: with(func(c *correlate.Config) {
				c.Rules = []correlate.Rule{{Name: "checkout", Match: []*labels.Matcher{eq("service", "checkout")}, OpenAfter: correlate.OpenAfter{Alerts: 2}}}
			}),
			want: diffWant{
				counts:         correlate.DiffCounts{Base: 3, Candidate: 1, CandidateHeld: 2, NoLongerOpened: 2, Unchanged: 1},
				noLongerOpened: []string{"HighLatency on checkout: suppressed", "ErrorRate on checkout: suppressed"},
				reason:         "every alert resolved before open_after (alerts: 2) was met",
			},
		},
		{
			name:   "open_after holds back an alert still firing",
			events: events(diffAlert("c1", "HighLatency", "checkout", 10, -1)),
			base:   def, cand: with(func(c *correlate.Config) { c.OpenAfter = correlate.OpenAfter{For: time.Hour} }),
			want: diffWant{
				counts:         correlate.DiffCounts{Base: 1, Candidate: 0, CandidateHeld: 1, NoLongerOpened: 1},
				noLongerOpened: []string{"HighLatency on checkout: pending"},
				reason:         "holds it back until open_after (for: 1h) is met",
			},
		},
		{
			name:   "an ignore rule",
			events: events(checkoutTwice, diffAlert("w1", "Watchdog", "meta", 0, -1)),
			base:   def,
			cand: with(func(c *correlate.Config) {
				c.Rules = []correlate.Rule{{Name: "watchdog", Match: []*labels.Matcher{eq("alertname", "Watchdog")}, Ignore: []*labels.Matcher{eq("alertname", "Watchdog")}}}
			}),
			want: diffWant{
				counts:         correlate.DiffCounts{Base: 3, Candidate: 2, NoLongerOpened: 1, Unchanged: 2},
				noLongerOpened: []string{"Watchdog on meta: ignored"},
				reason:         "a rule ignores its alerts (1 of 1)",
			},
		},
		{
			name:   "dropping open_after opens what was held back",
			events: events(checkoutTwice),
			base:   with(func(c *correlate.Config) { c.OpenAfter = correlate.OpenAfter{Alerts: 2} }), cand: def,
			want: diffWant{
				counts:      correlate.DiffCounts{Base: 0, BaseHeld: 2, Candidate: 2, NewlyOpened: 2},
				newlyOpened: []string{"HighLatency on checkout: suppressed", "ErrorRate on checkout: suppressed"},
				reason:      "every alert resolved before open_after",
			},
		},
		{
			name: "another severity label changes severity and title",
			events: events(
				diffAlert("c1", "HighLatency", "checkout", 10, 30, "priority", "critical"),
				diffAlert("c2", "ErrorRate", "checkout", 12, -1, "severity", "critical"),
			),
			base: def, cand: with(func(c *correlate.Config) { c.SeverityLabel = "priority" }),
			want: diffWant{
				counts:  correlate.DiffCounts{Base: 1, Candidate: 1, Changed: 1},
				changed: []string{"ErrorRate on checkout (+1 more alert): title ErrorRate on checkout (+1 more alert) -> HighLatency on checkout (+1 more alert)"},
			},
		},
		{
			name: "an alert no longer ignored joins: end, title and alerts change",
			events: events(
				diffAlert("c1", "HighLatency", "checkout", 10, 20),
				diffAlert("c2", "ErrorRate", "checkout", 15, 50, "severity", "critical"),
			),
			base: with(func(c *correlate.Config) {
				c.Rules = []correlate.Rule{{Name: "errors", Match: []*labels.Matcher{eq("alertname", "ErrorRate")}, Ignore: []*labels.Matcher{eq("alertname", "ErrorRate")}}}
			}),
			cand: def,
			want: diffWant{
				counts: correlate.DiffCounts{Base: 1, Candidate: 1, Changed: 1},
				changed: []string{"HighLatency on checkout: severity warning -> critical; resolved_at 2026-11-20T10:20:00Z -> 2026-11-20T10:50:00Z; " +
					"title HighLatency on checkout -> ErrorRate on checkout (+1 more alert); alerts 1 -> 2"},
			},
		},
		{
			name: "a shorter change lookback drops the suspect",
			events: events(
				diffAlert("c1", "HighLatency", "checkout", 30, 40),
				[]hindsight.Event{diffDeploy("checkout", "v2.3.1", 18), diffDeploy("checkout", "v2.3.2", 27)},
				diffAlert("c2", "HighLatency", "checkout", 100, 110),
				[]hindsight.Event{diffDeploy("checkout", "v2.3.3", 80)},
			),
			base: def, cand: with(func(c *correlate.Config) { c.ChangeLookback = 10 * time.Minute }),
			want: diffWant{
				counts:       correlate.DiffCounts{Base: 2, Candidate: 2, SuspectMoved: 1, Unchanged: 1},
				suspectMoved: []string{"HighLatency on checkout: v2.3.3 -> none"},
			},
		},
		{
			name: "a shared label moves the suspect to another service",
			events: events(
				diffAlert("c1", "HighLatency", "checkout", 60, 70, "cluster", "eu1"),
				[]hindsight.Event{diffDeploy("checkout", "v1", 5), func() hindsight.Event {
					d := diffDeploy("mesh", "m7", 58)
					d.Labels = map[string]string{"cluster": "eu1"}
					return d
				}()},
			),
			base: with(func(c *correlate.Config) { c.SharedLabels = nil }), cand: def,
			want: diffWant{
				counts:       correlate.DiffCounts{Base: 1, Candidate: 1, SuspectMoved: 1},
				suspectMoved: []string{"HighLatency on checkout: v1 -> m7"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, cand := tc.base.FoldStream(tc.events), tc.cand.FoldStream(tc.events)
			r := correlate.Diff(base, cand)
			checkDiff(t, r, tc.want)

			// The same incidents in another order give the same bytes.
			want, _ := json.Marshal(r)
			for range 5 {
				rand.Shuffle(len(base), func(i, j int) { base[i], base[j] = base[j], base[i] })
				rand.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
				if got, _ := json.Marshal(correlate.Diff(base, cand)); !bytes.Equal(got, want) {
					t.Fatalf("shuffled incidents give\n%s\nwant\n%s", got, want)
				}
			}
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			t.Logf("text:\n%s", text.String())
			checkText(t, r, text.String())
		})
	}
}

func checkDiff(t *testing.T, r correlate.DiffReport, w diffWant) {
	t.Helper()
	if r.Counts != w.counts {
		t.Errorf("counts\n got %+v\nwant %+v", r.Counts, w.counts)
	}
	titles := func(refs []correlate.IncidentRef) string {
		s := make([]string, len(refs))
		for i, x := range refs {
			s[i] = x.Title
		}
		return strings.Join(s, ", ")
	}
	var got diffWant
	for _, m := range r.Merged {
		got.merged = append(got.merged, m.Into.Title+" <- "+titles(m.From))
	}
	for _, s := range r.Split {
		got.split = append(got.split, s.From.Title+" -> "+titles(s.Into))
	}
	for _, o := range r.NewlyOpened {
		got.newlyOpened = append(got.newlyOpened, o.Incident.Title+": "+o.Why)
	}
	for _, o := range r.NoLongerOpened {
		got.noLongerOpened = append(got.noLongerOpened, o.Incident.Title+": "+o.Why)
	}
	for _, c := range r.Changed {
		var f []string
		for _, x := range c.Fields {
			f = append(f, fmt.Sprintf("%s %s -> %s", x.Field, x.Old, x.New))
		}
		got.changed = append(got.changed, c.Base.Title+": "+strings.Join(f, "; "))
	}
	version := func(s *correlate.SuspectRef) string {
		if s == nil {
			return "none"
		}
		return s.Version
	}
	for _, s := range r.SuspectMoved {
		got.suspectMoved = append(got.suspectMoved, fmt.Sprintf("%s: %s -> %s", s.Base.Title, version(s.Old), version(s.New)))
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"merged", got.merged, w.merged}, {"split", got.split, w.split},
		{"newly opened", got.newlyOpened, w.newlyOpened}, {"no longer opened", got.noLongerOpened, w.noLongerOpened},
		{"changed", got.changed, w.changed}, {"suspected change moved", got.suspectMoved, w.suspectMoved},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s\n got %q\nwant %q", c.what, c.got, c.want)
		}
	}
	if w.reason != "" {
		var reason string
		if len(r.NoLongerOpened) > 0 {
			reason = r.NoLongerOpened[0].Reason
		} else if len(r.NewlyOpened) > 0 {
			reason = r.NewlyOpened[0].Reason
		}
		if !strings.Contains(reason, w.reason) {
			t.Errorf("reason %q, want it to say %q", reason, w.reason)
		}
	}
	data, _ := json.Marshal(r)
	for _, list := range []string{"merged", "split", "newly_opened", "no_longer_opened", "changed", "suspected_change_moved"} {
		if bytes.Contains(data, []byte(`"`+list+`":null`)) {
			t.Errorf("%s is null in %s", list, data)
		}
	}
}

// checkText checks the text names every section that has entries, and
// only those.
func checkText(t *testing.T, r correlate.DiffReport, text string) {
	t.Helper()
	if r.Empty() != strings.Contains(text, "no change") {
		t.Errorf("empty %v, text:\n%s", r.Empty(), text)
	}
	for _, s := range []struct {
		heading string
		n       int
	}{
		{"Merged:", len(r.Merged)}, {"Split:", len(r.Split)}, {"Newly opened:", len(r.NewlyOpened)},
		{"No longer opened:", len(r.NoLongerOpened)}, {"Changed:", len(r.Changed)}, {"Suspected change moved:", len(r.SuspectMoved)},
	} {
		if has := strings.Contains(text, s.heading); has != (s.n > 0) {
			t.Errorf("%d entries, section %q shown: %v\n%s", s.n, s.heading, has, text)
		}
	}
}

// Incidents regrouped across: each candidate incident made of several is
// a merge, each base incident now in several a split.
func TestDiffRegrouped(t *testing.T) {
	inc := func(id string, start int, status hindsight.Status, fps ...string) hindsight.Incident {
		i := hindsight.Incident{ID: id, Title: id, Status: status, StartedAt: diffAt(start), Key: "k"}
		for _, fp := range fps {
			i.Alerts = append(i.Alerts, hindsight.AlertSummary{Fingerprint: fp, StartsAt: diffAt(0)})
		}
		return i
	}
	open := hindsight.StatusOpen
	base := []hindsight.Incident{inc("b2", 20, open, "c", "d"), inc("b1", 10, open, "a", "b"), inc("b3", 30, hindsight.StatusPending, "e")}
	cand := []hindsight.Incident{inc("c3", 25, open, "d"), inc("c1", 10, open, "a"), inc("c2", 15, open, "b", "c", "e")}
	r := correlate.Diff(base, cand)
	checkDiff(t, r, diffWant{
		counts:      correlate.DiffCounts{Base: 2, BaseHeld: 1, Candidate: 3, Merged: 1, Split: 2},
		merged:      []string{"c2 <- b1, b2"},
		split:       []string{"b1 -> c1, c2", "b2 -> c2, c3"},
		newlyOpened: nil,
	})
}

func TestDiffEmpty(t *testing.T) {
	r := correlate.Diff(nil, nil)
	data, _ := json.Marshal(r)
	if bytes.Contains(data, []byte("null")) {
		t.Errorf("empty report has a null: %s", data)
	}
	var text bytes.Buffer
	r.WriteText(&text)
	if want := "current rules: 0 incidents opened; candidate rules: 0 incidents opened\nno change: every incident opens and reads the same (0 unchanged)\n"; text.String() != want {
		t.Errorf("text\n got %q\nwant %q", text.String(), want)
	}
}
