package correlate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// occurrence is one alert occurrence: a series (fingerprint) that started
// firing at startsAt, with what its events said.
type occurrence struct {
	id       string // fingerprint@startsAt
	name     string
	fp       string
	startsAt time.Time
	endsAt   time.Time // zero while firing
	firing   *hindsight.Event
	resolved *hindsight.Event
	received time.Time // when Hindsight first heard of it
}

func (o *occurrence) open() bool { return o.endsAt.IsZero() }

// info is the event that describes the occurrence best: the firing one,
// else the resolved one that implies it.
func (o *occurrence) info() *hindsight.Event {
	if o.firing != nil {
		return o.firing
	}
	return o.resolved
}

// Fold computes the incidents of one key from all of its events, in order
// of start. Duplicated event IDs count once. Fold is pure: the same set
// of events gives the same incidents whatever their order.
func (c Config) Fold(key string, events []hindsight.Event) []hindsight.Incident {
	evs := uniqueSorted(events)
	occs := c.occurrences(evs)
	var deploys, notes []*hindsight.Event
	for i := range evs {
		switch e := &evs[i]; {
		case e.Kind.IsDeploy():
			deploys = append(deploys, e)
		case e.Kind == hindsight.KindNote && e.Note != nil:
			notes = append(notes, e)
		}
	}
	var out []hindsight.Incident
	for _, cl := range c.cluster(occs) {
		out = append(out, c.incident(key, cl, deploys, notes))
	}
	return out
}

// uniqueSorted orders events by (time, ID) and keeps the first of each ID.
func uniqueSorted(events []hindsight.Event) []hindsight.Event {
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b hindsight.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID), a.ReceivedAt.Compare(b.ReceivedAt))
	})
	return slices.CompactFunc(evs, func(a, b hindsight.Event) bool { return a.ID == b.ID })
}

func (c Config) occurrences(evs []hindsight.Event) []*occurrence {
	byID := map[string]*occurrence{}
	var occs []*occurrence
	for i := range evs {
		e := &evs[i]
		if !e.Kind.IsAlert() || e.Alert == nil {
			continue
		}
		id := e.Alert.OccurrenceID()
		o := byID[id]
		if o == nil {
			o = &occurrence{id: id, name: e.Alert.Name, fp: e.Alert.Fingerprint, startsAt: e.Alert.StartsAt.UTC(), received: e.ReceivedAt}
			byID[id] = o
			occs = append(occs, o)
		}
		if e.ReceivedAt.Before(o.received) {
			o.received = e.ReceivedAt
		}
		switch e.Kind {
		case hindsight.KindAlertFiring:
			o.firing = e
		case hindsight.KindAlertResolved:
			// A resolved occurrence stays resolved; of two resolutions
			// (a bug upstream), the earliest wins, whatever the order.
			if o.resolved == nil || e.Time.Before(o.endsAt) {
				o.resolved, o.endsAt = e, e.Time.UTC()
			}
		}
	}
	slices.SortFunc(occs, func(a, b *occurrence) int {
		return cmp.Or(a.startsAt.Compare(b.startsAt), strings.Compare(a.id, b.id))
	})
	return occs
}

// cluster groups occurrences (sorted by start) whose active spans overlap
// or are separated by less than the reopen window.
func (c Config) cluster(occs []*occurrence) [][]*occurrence {
	var out [][]*occurrence
	var end time.Time // end of the current cluster; zero = open-ended
	for _, o := range occs {
		n := len(out)
		if n > 0 && (end.IsZero() || o.startsAt.Sub(end) < c.ReopenWindow) {
			out[n-1] = append(out[n-1], o)
		} else {
			out = append(out, []*occurrence{o})
			end = o.endsAt
			continue
		}
		if !end.IsZero() && (o.open() || o.endsAt.After(end)) {
			end = o.endsAt
		}
	}
	return out
}

// IncidentID derives an incident's ID from its key and the alert
// occurrence it started with.
func IncidentID(key, anchor string) string {
	h := sha256.Sum256([]byte(key + "\x00" + anchor))
	return "inc-" + hex.EncodeToString(h[:8])
}

func (c Config) incident(key string, occs []*occurrence, deploys, notes []*hindsight.Event) hindsight.Incident {
	first := occs[0]
	inc := hindsight.Incident{
		ID:        IncidentID(key, first.id),
		Key:       key,
		Anchor:    first.id,
		StartedAt: first.startsAt,
		Status:    hindsight.StatusOpen,
		Service:   cmp.Or(first.info().Service, key),
		// Lists are never null in JSON.
		SuspectedChanges: []hindsight.SuspectedChange{},
	}
	_, keyWhy := c.Key(first.info())
	if l := keyLabel(c, first.info()); l != "" {
		inc.KeyLabels = map[string]string{l: key}
	}

	// Lifecycle, alerts and timeline entries, in one sweep by start.
	inAnchor := map[string]bool{}
	var lastEnd, coveredUntil time.Time // coveredUntil zero = still firing
	open := false
	var top *occurrence
	var detected *occurrence
	for i, o := range occs {
		inAnchor[o.id] = true
		e := o.info()
		if i == 0 {
			inc.Lifecycle = append(inc.Lifecycle, hindsight.LifecycleChange{Time: o.startsAt, Status: "opened",
				Reason: fmt.Sprintf("%s started firing; key %s", o.name, keyWhy)})
		} else if !open && o.startsAt.After(coveredUntil) {
			inc.Reopened++
			inc.Lifecycle = append(inc.Lifecycle, hindsight.LifecycleChange{Time: o.startsAt, Status: "reopened",
				Reason: fmt.Sprintf("%s started firing %s after every alert had resolved (reopen window %s)",
					o.name, hindsight.FormatDuration(o.startsAt.Sub(coveredUntil)), hindsight.FormatDuration(c.ReopenWindow))})
		}
		if o.open() {
			open = true
		} else if !open && o.endsAt.After(coveredUntil) {
			coveredUntil = o.endsAt
		}
		if o.endsAt.After(lastEnd) {
			lastEnd = o.endsAt
		}
		if top == nil || severityRank(c.severity(e)) > severityRank(c.severity(top.info())) {
			top = o
		}
		if detected == nil || o.received.Before(detected.received) || (o.received.Equal(detected.received) && o.startsAt.Before(detected.startsAt)) {
			detected = o
		}
		inc.Alerts = append(inc.Alerts, c.alertSummary(o))
		inc.Severity = maxSeverity(inc.Severity, c.severity(e))
	}
	if !open {
		inc.Status = hindsight.StatusResolved
		t := lastEnd
		inc.ResolvedAt = &t
		inc.Lifecycle = append(inc.Lifecycle, hindsight.LifecycleChange{Time: lastEnd, Status: "resolved",
			Reason: fmt.Sprintf("every alert resolved (%d); the last was %s", len(occs), lastResolved(occs).name)})
		d := hindsight.Seconds(lastEnd.Sub(inc.StartedAt).Seconds())
		inc.TimeToResolve = &d
	}
	inc.Title = title(top, occs, inc.Service)

	det := detected.received
	inc.DetectedAt = &det
	// Time to detect is only known when the first notification came
	// while the incident was going on; a backfill would give nonsense.
	if inc.ResolvedAt == nil || det.Before(*inc.ResolvedAt) {
		d := max(det.Sub(inc.StartedAt), 0)
		s := hindsight.Seconds(d.Seconds())
		inc.TimeToDetect = &s
	}

	reason := "key " + keyWhy
	for _, o := range occs {
		inc.Timeline = append(inc.Timeline, c.alertEntries(o, o == detected, reason)...)
	}
	c.linkDeploys(&inc, deploys, lastEnd, open)
	for _, n := range notes {
		if inAnchor[n.Note.Anchor] {
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{ID: n.ID, Time: n.Time.UTC(), Kind: n.Kind, Source: n.Source,
				Summary: n.Summary, Reason: "note written on incident " + n.Note.IncidentID})
		}
	}
	slices.SortFunc(inc.Timeline, func(a, b hindsight.TimelineEntry) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), strings.Compare(a.ID, b.ID))
	})
	return inc
}

func keyLabel(c Config, e *hindsight.Event) string {
	for _, l := range c.KeyLabels {
		if e.Labels[l] != "" {
			return l
		}
	}
	return ""
}

// lastResolved is the occurrence whose resolution resolved the incident;
// of several in the same instant, the one last on the timeline.
func lastResolved(occs []*occurrence) *occurrence {
	last := occs[0]
	for _, o := range occs {
		if o.endsAt.After(last.endsAt) || (o.endsAt.Equal(last.endsAt) && o.resolved != nil && last.resolved != nil && o.resolved.ID > last.resolved.ID) {
			last = o
		}
	}
	return last
}

func title(top *occurrence, occs []*occurrence, service string) string {
	names := map[string]bool{}
	for _, o := range occs {
		names[o.name] = true
	}
	t := fmt.Sprintf("%s on %s", top.name, service)
	switch n := len(names) - 1; {
	case n == 1:
		t += " (+1 more alert)"
	case n > 1:
		t += fmt.Sprintf(" (+%d more alerts)", n)
	}
	return t
}

func (c Config) severity(e *hindsight.Event) string { return e.Labels[c.SeverityLabel] }

func (c Config) alertSummary(o *occurrence) hindsight.AlertSummary {
	e := o.info()
	s := hindsight.AlertSummary{
		Name: o.name, Fingerprint: o.fp, Severity: c.severity(e), Instance: e.Labels["instance"],
		Labels: e.Labels, Summary: e.Summary, StartsAt: o.startsAt, ReceivedAt: o.received,
		GeneratorURL: e.Alert.GeneratorURL,
		RunbookURL:   cmp.Or(e.Alert.Annotations["runbook_url"], e.Alert.Annotations["runbook"]),
		DashboardURL: cmp.Or(e.Alert.Annotations["dashboard_url"], e.Alert.Annotations["dashboard"]),
	}
	if !o.open() {
		t := o.endsAt
		s.EndsAt = &t
	}
	return s
}

// alertEntries are an occurrence's timeline entries. Their summary is the
// alert's own (its summary annotation); name, severity and instance are
// in the labels, so a renderer can say them once.
func (c Config) alertEntries(o *occurrence, detection bool, reason string) []hindsight.TimelineEntry {
	e := o.info()
	fired := hindsight.TimelineEntry{
		ID: hindsight.AlertEventID(o.fp, o.startsAt, "firing"), Time: o.startsAt,
		Kind: hindsight.KindAlertFiring, Source: hindsight.SourceAlertmanager,
		Summary: e.Summary, Reason: reason, Detection: detection,
		Labels: e.Labels, URL: e.Alert.GeneratorURL,
	}
	if o.firing == nil {
		fired.Summary += " (implied by its resolved notification)"
	}
	out := []hindsight.TimelineEntry{fired}
	if o.resolved != nil {
		out = append(out, hindsight.TimelineEntry{
			ID: o.resolved.ID, Time: o.endsAt, Kind: hindsight.KindAlertResolved, Source: hindsight.SourceAlertmanager,
			Summary: fmt.Sprintf("%s (fired for %s)", e.Summary, hindsight.FormatDuration(o.endsAt.Sub(o.startsAt))),
			Reason:  reason, Labels: e.Labels, URL: e.Alert.GeneratorURL,
		})
	}
	return out
}

// linkDeploys puts deploys in the lookback window before the start on the
// timeline as suspected changes, and deploys during the incident, or
// within the reopen window after it resolved (a rollback whose effect the
// alerts saw first), on the timeline.
func (c Config) linkDeploys(inc *hindsight.Incident, deploys []*hindsight.Event, end time.Time, open bool) {
	from := inc.StartedAt.Add(-c.ChangeLookback)
	latest := map[string]*hindsight.Event{} // per deploy, its last event before the start
	var order []string
	for _, d := range deploys {
		t := d.Time.UTC()
		switch {
		case t.Before(from):
			continue
		case !t.After(inc.StartedAt):
			before := inc.StartedAt.Sub(t)
			inc.Timeline = append(inc.Timeline, deployEntry(d, fmt.Sprintf("suspected change: deploy of %s %s before the first alert", d.Service, hindsight.FormatDuration(before))))
			id := cmp.Or(d.Deploy.ID, d.Service+"\x00"+d.Deploy.Environment+"\x00"+d.Deploy.Version)
			if latest[id] == nil {
				order = append(order, id)
			}
			latest[id] = d // deploys are in time order: the last one wins
		case open || !t.After(end):
			inc.Timeline = append(inc.Timeline, deployEntry(d, fmt.Sprintf("deploy of %s during the incident", d.Service)))
		case t.Sub(end) < c.ReopenWindow:
			inc.Timeline = append(inc.Timeline, deployEntry(d, fmt.Sprintf("deploy of %s %s after the incident resolved", d.Service, hindsight.FormatDuration(t.Sub(end)))))
		}
	}
	for _, id := range order {
		inc.SuspectedChanges = append(inc.SuspectedChanges, c.suspect(inc, latest[id]))
	}
	slices.SortFunc(inc.SuspectedChanges, func(a, b hindsight.SuspectedChange) int {
		return cmp.Or(cmp.Compare(a.MinutesBefore, b.MinutesBefore), strings.Compare(a.EventID, b.EventID))
	})
}

func deployEntry(d *hindsight.Event, reason string) hindsight.TimelineEntry {
	return hindsight.TimelineEntry{ID: d.ID, Time: d.Time.UTC(), Kind: d.Kind, Source: d.Source, Summary: d.Summary,
		Reason: reason, Labels: d.Labels, URL: d.Deploy.URL}
}

// suspect scores a deploy before the incident: the nearer, the more
// suspect; a failed deploy more so. It is a suspicion, never a cause.
func (c Config) suspect(inc *hindsight.Incident, d *hindsight.Event) hindsight.SuspectedChange {
	before := inc.StartedAt.Sub(d.Time)
	reasons := []string{fmt.Sprintf("same service %s", d.Service), hindsight.FormatDuration(before) + " before the first alert"}
	score := 0.6
	if c.ChangeLookback > 0 {
		score = 0.2 + 0.6*(1-before.Seconds()/c.ChangeLookback.Seconds())
	}
	switch d.Deploy.Status {
	case "failed":
		score += 0.2
		reasons = append(reasons, "the deploy failed")
	case "rolled_back":
		reasons = append(reasons, "a rollback")
	case "started":
		reasons = append(reasons, "the deploy was still in progress")
	}
	return hindsight.SuspectedChange{
		EventID: d.ID, Time: d.Time.UTC(), Service: d.Service, Environment: d.Deploy.Environment,
		Version: d.Deploy.Version, Status: d.Deploy.Status, Actor: d.Deploy.Actor, Commit: d.Deploy.Commit,
		URL: d.Deploy.URL, Description: d.Deploy.Description,
		MinutesBefore: math.Round(before.Minutes()*10) / 10,
		Score:         float64(int(min(score, 1)*1000+0.5)) / 1000,
		Reason:        strings.Join(reasons, "; "),
	}
}

func kindOrder(k hindsight.Kind) int {
	switch {
	case k.IsDeploy():
		return 0
	case k == hindsight.KindAlertFiring:
		return 1
	case k == hindsight.KindNote:
		return 2
	}
	return 3
}
