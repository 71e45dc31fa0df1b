package correlate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// ContextSource is where Enrich's context comes from: the store in
// production, the events themselves in FoldStream and replay.
type ContextSource interface {
	// Deploys returns the deploy events whose time lies in [from, to].
	Deploys(from, to time.Time) ([]hindsight.Event, error)
	// Neighbours returns the incidents that started in [from, to]. Their
	// timelines may be left out: Enrich does not read them.
	Neighbours(from, to time.Time) ([]hindsight.Incident, error)
}

// FarFuture stands for "not yet" at the end of a span: the end of an
// incident still open. It is within UnixNano's range.
var FarFuture = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// ContextWindow returns the span of deploy times and of neighbours'
// starts that Enrich needs for inc.
func (c Config) ContextWindow(inc *hindsight.Incident) (deploysFrom, deploysTo, startsFrom, startsTo time.Time) {
	s := c.ruleSettings(inc.Rule)
	startsFrom, startsTo = inc.StartedAt.Add(-c.RelatedWindow), inc.StartedAt.Add(c.RelatedWindow)
	lookback := c.ChangeLookback
	for _, r := range c.Rules {
		lookback = max(lookback, r.ChangeLookback)
	}
	deploysFrom, deploysTo = startsFrom.Add(-lookback), FarFuture
	if inc.ResolvedAt != nil && inc.Status != hindsight.StatusPending {
		reopen := max(s.ReopenWindow, c.ReopenWindow)
		for _, r := range c.Rules {
			reopen = max(reopen, r.ReopenWindow)
		}
		deploysTo = inc.ResolvedAt.Add(reopen)
	}
	return deploysFrom, deploysTo, startsFrom, startsTo
}

// EnrichFrom enriches inc with the context src holds.
func (c Config) EnrichFrom(src ContextSource, inc *hindsight.Incident) error {
	df, dt, sf, st := c.ContextWindow(inc)
	deploys, err := src.Deploys(df, dt)
	if err != nil {
		return fmt.Errorf("deploys around incident %s: %w", inc.ID, err)
	}
	near, err := src.Neighbours(sf, st)
	if err != nil {
		return fmt.Errorf("incidents near %s: %w", inc.ID, err)
	}
	c.Enrich(inc, deploys, near)
	return nil
}

// Enrich adds to a folded incident what lies around it: the deploys it
// may owe to (suspected changes, ranked by score, each with its reasons),
// the deploys during it and just after it (on its timeline), and the
// incidents of other keys that started close to it (related). deploys
// must hold every deploy in ContextWindow and neighbours every incident
// that started in it; others are ignored. Enrich is pure.
func (c Config) Enrich(inc *hindsight.Incident, deploys []hindsight.Event, neighbours []hindsight.Incident) {
	s := c.ruleSettings(inc.Rule)
	ds := uniqueSorted(deploys)
	ds = slices.DeleteFunc(ds, func(e hindsight.Event) bool { return !e.Kind.IsDeploy() || e.Deploy == nil })
	inc.Timeline = slices.DeleteFunc(slices.Clone(inc.Timeline), func(e hindsight.TimelineEntry) bool { return e.Kind.IsDeploy() })
	var entries []hindsight.TimelineEntry
	inc.SuspectedChanges, entries = s.changes(inc, ds)
	inc.Timeline = append(inc.Timeline, entries...)
	sortTimeline(inc.Timeline)
	for i := range inc.Timeline {
		inc.Timeline[i].Hidden = inc.Postmortem.IsHidden(inc.Timeline[i].ID)
	}

	inc.Related = []hindsight.RelatedIncident{}
	for _, n := range neighbours {
		if n.ID == inc.ID || n.Key == inc.Key || !n.Status.Opened() {
			continue
		}
		dt := n.StartedAt.Sub(inc.StartedAt)
		if dt.Abs() > c.RelatedWindow {
			continue
		}
		r := hindsight.RelatedIncident{ID: n.ID, Title: n.Title, Service: n.Service, Status: n.Status, StartedAt: n.StartedAt}
		switch {
		case dt > 0:
			r.Reason = fmt.Sprintf("started %s after this one", hindsight.FormatDuration(dt))
		case dt < 0:
			r.Reason = fmt.Sprintf("started %s before this one", hindsight.FormatDuration(-dt))
		default:
			r.Reason = "started at the same time"
		}
		r.Reason += fmt.Sprintf(" (within the related window of %s)", hindsight.FormatDuration(c.RelatedWindow))
		theirs, _ := c.ruleSettings(n.Rule).changes(&n, ds)
		for _, mine := range inc.SuspectedChanges {
			if slices.ContainsFunc(theirs, func(t hindsight.SuspectedChange) bool { return sameChange(t, mine) }) {
				r.SharedChange = mine.EventID
				r.Reason += fmt.Sprintf("; both suspect the deploy of %s %s", mine.Service, cmp.Or(mine.Version, mine.Time.Format(time.RFC3339)))
				break
			}
		}
		inc.Related = append(inc.Related, r)
	}
	slices.SortFunc(inc.Related, func(a, b hindsight.RelatedIncident) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.ID, b.ID))
	})
}

// sameChange: two suspected changes are one deploy, maybe seen through
// different events of its pipeline (started, succeeded).
func sameChange(a, b hindsight.SuspectedChange) bool {
	return a.EventID == b.EventID || (a.Version != "" && a.Service == b.Service && a.Environment == b.Environment && a.Version == b.Version)
}

// deployIdentity names one deploy across the events of its pipeline.
func deployIdentity(d *hindsight.Event) string {
	if d.Deploy.ID != "" {
		return d.Deploy.ID + "\x00" + d.Service + "\x00" + d.Deploy.Environment
	}
	return "\x00" + d.Service + "\x00" + d.Deploy.Environment + "\x00" + d.Deploy.Version
}

// relation is how a deploy relates to an incident's alerts.
type relation struct {
	service bool
	shared  string // "cluster eu1": a shared place, when not the service
	env     string // the environment both name
}

func (r relation) any() bool { return r.service || r.shared != "" }

// relate compares a deploy with the incident's alerts through the rule's
// deploy_labels and shared_labels. A deploy to another environment, or
// another shared place (cluster), than the alerts name is unrelated,
// whatever else matches.
func (s settings) relate(inc *hindsight.Incident, labels *alertLabels, d *hindsight.Event) relation {
	var r relation
	hasLabel := labels.has
	if env := d.Deploy.Environment; env != "" {
		named, equal := hasLabel(s.DeployLabels["environment"], env)
		if named && !equal {
			return relation{}
		}
		if equal {
			r.env = env
		}
	}
	// A deploy to another place (cluster) than the alerts name is
	// unrelated too; one to the same place links other services.
	var shared string
	for _, l := range s.SharedLabels {
		v := d.Labels[l]
		if v == "" {
			continue
		}
		named, equal := hasLabel(cmp.Or(s.DeployLabels[l], l), v)
		if named && !equal {
			return relation{}
		}
		if equal && shared == "" {
			shared = l + " " + v
		}
	}
	if _, equal := hasLabel(s.DeployLabels["service"], d.Service); equal || d.Service == inc.Service {
		r.service = true
		return r
	}
	r.shared = shared
	return r
}

// alertLabels answers, for an incident's alerts, whether any names a
// label and whether any gives it a value. A storm's incident has
// thousands of alerts and is compared with every deploy around it: the
// values of each label asked about are gathered once.
type alertLabels struct {
	alerts []hindsight.AlertSummary
	values map[string]map[string]bool // label -> its values among the alerts
}

func (a *alertLabels) has(label, value string) (named, equal bool) {
	vs, ok := a.values[label]
	if !ok {
		vs = map[string]bool{}
		for _, al := range a.alerts {
			if v := al.Labels[label]; v != "" {
				vs[v] = true
			}
		}
		if a.values == nil {
			a.values = map[string]map[string]bool{}
		}
		a.values[label] = vs
	}
	return len(vs) > 0, vs[value]
}

// changes scores every related deploy in the lookback before inc started
// and returns them ranked, with the timeline entries of suspects and of
// the service's deploys during the incident and just after it.
func (s settings) changes(inc *hindsight.Incident, ds []hindsight.Event) ([]hindsight.SuspectedChange, []hindsight.TimelineEntry) {
	from := inc.StartedAt.Add(-s.ChangeLookback)
	var end time.Time // zero while open
	if inc.ResolvedAt != nil && inc.Status != hindsight.StatusPending {
		end = *inc.ResolvedAt
	}
	type candidate struct {
		d   *hindsight.Event
		rel relation
	}
	latest := map[string]*candidate{} // per deploy, its last event before the start
	var order []string
	var during []*hindsight.Event // the service's deploys during the incident
	var entries []hindsight.TimelineEntry
	labels := &alertLabels{alerts: inc.Alerts}
	for i := range ds {
		d := &ds[i]
		t := d.Time.UTC()
		if t.Before(from) {
			continue
		}
		rel := s.relate(inc, labels, d)
		if !rel.any() {
			continue
		}
		switch {
		case !t.After(inc.StartedAt):
			id := deployIdentity(d)
			if latest[id] == nil {
				order = append(order, id)
			}
			latest[id] = &candidate{d, rel} // deploys are in time order: the last one wins
		case !rel.service:
		case end.IsZero() || !t.After(end):
			during = append(during, d)
			entries = append(entries, deployEntry(d, fmt.Sprintf("deploy of %s during the incident", d.Service)))
		case t.Sub(end) < s.ReopenWindow:
			entries = append(entries, deployEntry(d, fmt.Sprintf("deploy of %s %s after the incident resolved", d.Service, hindsight.FormatDuration(t.Sub(end)))))
		}
	}
	undid := undone(ds, during, end)
	sus := make([]hindsight.SuspectedChange, 0, len(order))
	for _, id := range order {
		c := latest[id]
		sus = append(sus, s.suspect(inc, c.d, c.rel, undid[id], end))
	}
	slices.SortFunc(sus, func(a, b hindsight.SuspectedChange) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.MinutesBefore, b.MinutesBefore), strings.Compare(a.EventID, b.EventID))
	})
	for i, c := range sus {
		rank := "the top suspect"
		if i > 0 {
			rank = fmt.Sprintf("suspect #%d", i+1)
		}
		d := slices.IndexFunc(ds, func(e hindsight.Event) bool { return e.ID == c.EventID })
		entries = append(entries, deployEntry(&ds[d], fmt.Sprintf("suspected change, %s (score %.2f): %s", rank, c.Score, c.Reason)))
	}
	return sus, entries
}

func deployEntry(d *hindsight.Event, reason string) hindsight.TimelineEntry {
	return hindsight.TimelineEntry{ID: d.ID, Time: d.Time.UTC(), Kind: d.Kind, Source: d.Source, Summary: d.Summary,
		Reason: reason, Labels: d.Labels, URL: d.Deploy.URL}
}

// suspect scores a deploy before the incident, from 0 to 1: the service
// itself, else a place it shares (a cluster); nearer the start; failed;
// rolled back during the incident before it resolved. It is a
// suspicion, never a cause.
func (s settings) suspect(inc *hindsight.Incident, d *hindsight.Event, rel relation, rb *hindsight.Event, end time.Time) hindsight.SuspectedChange {
	before := inc.StartedAt.Sub(d.Time)
	var reasons []string
	score := 0.0
	if rel.service {
		score += 0.45
		reasons = append(reasons, "same service "+d.Service)
	} else {
		score += 0.25
		reasons = append(reasons, fmt.Sprintf("same %s (a deploy of %s)", rel.shared, d.Service))
	}
	if rel.env != "" {
		score += 0.05
		reasons = append(reasons, "same environment "+rel.env)
	}
	near := 1.0
	if s.ChangeLookback > 0 {
		near = 1 - before.Seconds()/s.ChangeLookback.Seconds()
	}
	score += 0.3 * near
	reasons = append(reasons, hindsight.FormatDuration(before)+" before the first alert")
	switch d.Deploy.Status {
	case "failed":
		score += 0.1
		reasons = append(reasons, "the deploy failed")
	case "rolled_back":
		reasons = append(reasons, "a rollback")
	case "started":
		score += 0.05
		reasons = append(reasons, "the deploy was still in progress")
	}
	if rb != nil && d.Kind != hindsight.KindDeployRolledBack {
		score += 0.15
		what := "rolled back"
		if rb.Kind != hindsight.KindDeployRolledBack {
			what = "redeployed as " + cmp.Or(rb.Deploy.Version, "another version")
		}
		reasons = append(reasons, fmt.Sprintf("%s at %s, %s before the incident resolved", what, rb.Time.UTC().Format("15:04 UTC"), hindsight.FormatDuration(end.Sub(rb.Time))))
	}
	return hindsight.SuspectedChange{
		EventID: d.ID, Time: d.Time.UTC(), Service: d.Service, Environment: d.Deploy.Environment,
		Version: d.Deploy.Version, Status: d.Deploy.Status, Actor: d.Deploy.Actor, Commit: d.Deploy.Commit,
		URL: d.Deploy.URL, Description: d.Deploy.Description,
		MinutesBefore: math.Round(before.Minutes()*10) / 10,
		// Two decimals, as every reason and the draft print it.
		Score:  math.Round(min(score, 1)*100) / 100,
		Reason: strings.Join(reasons, "; "),
	}
}

// undone says which deploy each rollback during a resolved incident
// undid, by deploy identity: a rollback event undoes the deploy of the
// same pipeline ID, else the service's latest deploy before it; a deploy
// of another version that succeeded undoes the latest deploy of the
// service before it. Only what happened before the resolution counts.
func undone(ds []hindsight.Event, during []*hindsight.Event, end time.Time) map[string]*hindsight.Event {
	out := map[string]*hindsight.Event{}
	if end.IsZero() {
		return out
	}
	for _, x := range during {
		if x.Time.After(end) || (x.Kind != hindsight.KindDeployRolledBack && x.Kind != hindsight.KindDeploySucceeded) {
			continue
		}
		var target *hindsight.Event
		for i := range ds {
			y := &ds[i]
			if !y.Time.Before(x.Time) {
				break
			}
			if y.Service != x.Service || y.Deploy.Environment != x.Deploy.Environment || y.Kind == hindsight.KindDeployRolledBack {
				continue
			}
			if x.Kind == hindsight.KindDeployRolledBack && x.Deploy.ID != "" && y.Deploy.ID == x.Deploy.ID {
				target = y
				break
			}
			if deployIdentity(y) != deployIdentity(x) && y.Deploy.Version != x.Deploy.Version || x.Kind == hindsight.KindDeployRolledBack {
				target = y // the latest so far
			}
		}
		if target != nil {
			out[deployIdentity(target)] = x
		}
	}
	return out
}
