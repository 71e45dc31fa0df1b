package correlate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// Fold computes the incidents of one key from its alert and note events,
// in order of start. Duplicated event IDs count once; deploys are left to
// Enrich. now is how far event time has come (the latest time the stream
// has reached): it decides only whether alerts held back by open_after
// have fired long enough. Fold is pure: the same events and now give the
// same incidents whatever their order.
func (c Config) Fold(key string, events []hindsight.Event, now time.Time) []hindsight.Incident {
	evs := uniqueSorted(events)
	occs := c.occurrences(evs)
	if len(occs) == 0 {
		return nil
	}
	// Notes and human acts, in order of time: they follow the incident
	// their anchor belongs to.
	var notes []*hindsight.Event
	for i := range evs {
		if e := &evs[i]; (e.Kind == hindsight.KindNote && e.Note != nil) || (e.Kind.IsHuman() && e.Human != nil) {
			notes = append(notes, e)
		}
	}
	// Every alert of a key was placed by the same rule: the rule is part
	// of the key.
	place := c.Place(occs[0].info())
	s := c.ruleSettings(place.Rule)
	var out []hindsight.Incident
	for _, cl := range cluster(occs, s.ReopenWindow) {
		out = append(out, c.incident(key, s, place, cl, notes, now))
	}
	return out
}

// uniqueSorted orders events by (time, ID) and keeps the first of each ID.
func uniqueSorted(events []hindsight.Event) []hindsight.Event {
	evs := slices.Clone(events)
	// Of the copies of one event (redeliveries, Alertmanager's repeats),
	// the earliest in event time, then the first received, counts:
	// whatever order they came in, and whichever came first to the store
	// (Correlator.Apply keeps the same one).
	slices.SortFunc(evs, func(a, b hindsight.Event) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), Earlier(&a, &b))
	})
	evs = slices.CompactFunc(evs, func(a, b hindsight.Event) bool { return a.ID == b.ID })
	slices.SortFunc(evs, func(a, b hindsight.Event) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
	})
	return evs
}

// Earlier orders copies of one event: the one that counts comes first.
func Earlier(a, b *hindsight.Event) int {
	return cmp.Or(a.Time.Compare(b.Time), a.ReceivedAt.Compare(b.ReceivedAt))
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
		switch {
		case e.Kind.Fires():
			o.firing = e
		case e.Kind.Ends():
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
func cluster(occs []*occurrence, reopen time.Duration) [][]*occurrence {
	var out [][]*occurrence
	var end time.Time // end of the current cluster; zero = open-ended
	for _, o := range occs {
		n := len(out)
		if n > 0 && (end.IsZero() || o.startsAt.Sub(end) < reopen) {
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

func (c Config) incident(key string, s settings, place Placement, occs []*occurrence, notes []*hindsight.Event, now time.Time) hindsight.Incident {
	first := occs[0]
	inc := hindsight.Incident{
		ID:        IncidentID(key, first.id),
		Key:       key,
		Rule:      place.Rule,
		Anchor:    first.id,
		StartedAt: first.startsAt,
		Status:    hindsight.StatusOpen,
		Service:   cmp.Or(first.info().Service, key),
		Team:      first.info().Labels[cmp.Or(s.TeamLabel, "team")],
		// Lists are never null in JSON.
		SuspectedChanges: []hindsight.SuspectedChange{},
		Related:          []hindsight.RelatedIncident{},
	}
	inc.KeyLabels = keyLabels(s, first.info())

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
				Reason: fmt.Sprintf("%s started firing; %s", o.name, c.Place(e).Why)})
		} else if !open && o.startsAt.After(coveredUntil) {
			inc.Reopened++
			inc.Lifecycle = append(inc.Lifecycle, hindsight.LifecycleChange{Time: o.startsAt, Status: "reopened",
				Reason: fmt.Sprintf("%s started firing %s after every alert had resolved (reopen window %s)",
					o.name, hindsight.FormatDuration(o.startsAt.Sub(coveredUntil)), hindsight.FormatDuration(s.ReopenWindow))})
		}
		if o.open() {
			open = true
		} else if !open && o.endsAt.After(coveredUntil) {
			coveredUntil = o.endsAt
		}
		if o.endsAt.After(lastEnd) {
			lastEnd = o.endsAt
		}
		if top == nil || severityRank(s.severity(e)) > severityRank(s.severity(top.info())) {
			top = o
		}
		if detected == nil || o.received.Before(detected.received) || (o.received.Equal(detected.received) && o.startsAt.Before(detected.startsAt)) {
			detected = o
		}
		inc.Alerts = append(inc.Alerts, s.alertSummary(o))
		inc.Severity = maxSeverity(inc.Severity, s.severity(e))
	}
	inc.Title = title(top, occs, inc.Service)
	// Incidents of a composite key differ by more than their service.
	var where []string
	for _, l := range s.Key {
		if v := inc.KeyLabels[l]; v != "" && v != inc.Service {
			where = append(where, l+" "+v)
		}
	}
	if len(where) > 0 {
		inc.Title += " in " + strings.Join(where, ", ")
	}
	for _, o := range occs {
		// Each alert says how it was placed: the key may have come from
		// another label than the first alert's (service, else job).
		inc.Timeline = append(inc.Timeline, alertEntries(o, o == detected, c.Place(o.info()).Why)...)
	}
	var acts []*hindsight.Event
	for _, n := range notes {
		switch {
		case n.Note != nil && inAnchor[n.Note.Anchor]:
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{ID: n.ID, Time: n.Time.UTC(), Kind: n.Kind, Source: n.Source,
				Summary: n.Summary, Reason: "note written on incident " + n.Note.IncidentID})
		case n.Human != nil && inAnchor[n.Human.Anchor]:
			acts = append(acts, n)
		}
	}
	sortTimeline(inc.Timeline)
	inc.Postmortem = postmortem(acts)
	for i := range inc.Timeline {
		inc.Timeline[i].Hidden = inc.Postmortem.IsHidden(inc.Timeline[i].ID)
	}
	for _, o := range occs {
		if hindsight.IsDeclared(o.fp) {
			inc.Declared = true
		}
	}

	if !s.OpenAfter.zero() && !inc.Declared {
		opened, why, opensAt := s.OpenAfter.qualify(occs, now)
		if opened.IsZero() || opened.After(first.startsAt) {
			inc.Lifecycle = holdBack(inc.Lifecycle, s, place, first, opened, why)
			// Blips before it opened are not reopenings.
			inc.Reopened = 0
			for _, l := range inc.Lifecycle {
				if l.Status == "reopened" {
					inc.Reopened++
				}
			}
		}
		if opened.IsZero() {
			// Held back: the alerts are kept, and join the incident if
			// it opens; the record says why it has not. Nothing was
			// detected: no incident opened.
			inc.Status = hindsight.StatusPending
			for i := range inc.Timeline {
				inc.Timeline[i].Detection = false
			}
			if !open {
				inc.Status = hindsight.StatusSuppressed
				t := lastEnd
				inc.ResolvedAt = &t
				inc.Lifecycle = append(inc.Lifecycle, hindsight.LifecycleChange{Time: lastEnd, Status: "suppressed",
					Reason: fmt.Sprintf("every alert resolved before open_after (%s) was met: noise, not an incident", s.OpenAfter)})
			} else if !opensAt.IsZero() {
				inc.OpensAt = &opensAt
			}
			return inc
		}
	}

	// Durations count from when impact began: a human may have corrected
	// it to before the first alert.
	impact := inc.Postmortem.ImpactStart(inc.StartedAt)
	if !open {
		inc.Status = hindsight.StatusResolved
		t := lastEnd
		inc.ResolvedAt = &t
		inc.Lifecycle = append(inc.Lifecycle, hindsight.LifecycleChange{Time: lastEnd, Status: "resolved",
			Reason: fmt.Sprintf("every alert resolved (%d); the last was %s", len(occs), lastResolved(occs).name)})
		d := hindsight.Seconds(lastEnd.Sub(impact).Seconds())
		inc.TimeToResolve = &d
	}
	det := detected.received
	inc.DetectedAt = &det
	// Time to detect is only known when the first notification came
	// while the incident was going on; a backfill would give nonsense.
	if inc.ResolvedAt == nil || det.Before(*inc.ResolvedAt) {
		d := max(det.Sub(impact), 0)
		s := hindsight.Seconds(d.Seconds())
		inc.TimeToDetect = &s
	}
	return inc
}

// qualify says when a group of occurrences met the open_after condition
// (zero: not yet) and why, and, when it has not, when it will if its
// alerts still fire (zero: only another alert can open it).
func (oa OpenAfter) qualify(occs []*occurrence, now time.Time) (opened time.Time, why string, opensAt time.Time) {
	better := func(t time.Time, w string) {
		if opened.IsZero() || t.Before(opened) {
			opened, why = t, w
		}
	}
	if oa.Alerts > 1 && len(occs) >= oa.Alerts {
		o := occs[oa.Alerts-1]
		better(o.startsAt, fmt.Sprintf("%d alerts fired (open_after alerts: %d), the last %s", oa.Alerts, oa.Alerts, o.name))
	}
	if oa.For > 0 {
		for _, o := range occs {
			due := o.startsAt.Add(oa.For)
			switch {
			case !o.open() && !o.endsAt.Before(due), o.open() && !now.Before(due):
				better(due, fmt.Sprintf("%s fired for %s (open_after for: %s)", o.name, hindsight.FormatDuration(oa.For), hindsight.FormatDuration(oa.For)))
			case o.open() && (opensAt.IsZero() || due.Before(opensAt)):
				opensAt = due
			}
		}
	}
	if !opened.IsZero() {
		opensAt = time.Time{}
	}
	return opened, why, opensAt
}

// holdBack rewrites a lifecycle for open_after: pending from the first
// alert, opened when the condition was met (zero: not yet). Reopenings
// before that were part of the blips.
func holdBack(lc []hindsight.LifecycleChange, s settings, place Placement, first *occurrence, opened time.Time, why string) []hindsight.LifecycleChange {
	rule := "the default rule"
	if place.Rule != "" {
		rule = "rule " + place.Rule
	}
	out := []hindsight.LifecycleChange{{Time: first.startsAt, Status: "pending",
		Reason: fmt.Sprintf("%s started firing; %s holds it back until open_after (%s) is met; %s", first.name, rule, s.OpenAfter, place.Why)}}
	if opened.IsZero() {
		return out
	}
	out = append(out, hindsight.LifecycleChange{Time: opened, Status: "opened", Reason: why})
	for _, c := range lc[1:] {
		if c.Time.After(opened) {
			out = append(out, c)
		}
	}
	return out
}

func sortTimeline(t []hindsight.TimelineEntry) {
	slices.SortFunc(t, func(a, b hindsight.TimelineEntry) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), strings.Compare(a.ID, b.ID))
	})
}

// keyLabels are the labels the key was formed from, with their values.
func keyLabels(s settings, e *hindsight.Event) map[string]string {
	if len(s.Key) > 0 {
		m := make(map[string]string, len(s.Key))
		for _, l := range s.Key {
			m[l] = e.Labels[l]
		}
		return m
	}
	for _, l := range s.keyFallback {
		if v := e.Labels[l]; v != "" {
			return map[string]string{l: v}
		}
	}
	return nil
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

func (s settings) severity(e *hindsight.Event) string { return e.Labels[s.SeverityLabel] }

func (s settings) alertSummary(o *occurrence) hindsight.AlertSummary {
	e := o.info()
	a := hindsight.AlertSummary{
		Name: o.name, Fingerprint: o.fp, Severity: s.severity(e), Instance: e.Labels["instance"],
		Labels: e.Labels, Summary: e.Summary, StartsAt: o.startsAt, ReceivedAt: o.received,
		GeneratorURL: e.Alert.GeneratorURL,
		RunbookURL:   cmp.Or(e.Alert.Annotations["runbook_url"], e.Alert.Annotations["runbook"]),
		DashboardURL: cmp.Or(e.Alert.Annotations["dashboard_url"], e.Alert.Annotations["dashboard"]),
	}
	if !o.open() {
		t := o.endsAt
		a.EndsAt = &t
	}
	return a
}

// alertEntries are an occurrence's timeline entries. Their summary is the
// alert's own (its summary annotation); name, severity and instance are
// in the labels, so a renderer can say them once.
func alertEntries(o *occurrence, detection bool, reason string) []hindsight.TimelineEntry {
	e := o.info()
	id, kind, source := hindsight.AlertEventID(o.fp, o.startsAt, "firing"), hindsight.KindAlertFiring, hindsight.SourceAlertmanager
	if hindsight.IsDeclared(o.fp) {
		// Declared by hand: the entry is the declaration itself.
		id, kind, source = strings.TrimPrefix(o.fp, "declared:"), hindsight.KindDeclared, hindsight.SourceHuman
	}
	fired := hindsight.TimelineEntry{
		ID: id, Time: o.startsAt,
		Kind: kind, Source: source,
		Summary: e.Summary, Reason: reason, Detection: detection,
		Labels: e.Labels, URL: e.Alert.GeneratorURL,
	}
	if o.firing == nil {
		fired.Summary += " (implied by its resolved notification)"
	}
	out := []hindsight.TimelineEntry{fired}
	if o.resolved != nil {
		out = append(out, hindsight.TimelineEntry{
			ID: o.resolved.ID, Time: o.endsAt, Kind: o.resolved.Kind, Source: o.resolved.Source,
			Summary: fmt.Sprintf("%s (fired for %s)", e.Summary, hindsight.FormatDuration(o.endsAt.Sub(o.startsAt))),
			Reason:  reason, Labels: e.Labels, URL: e.Alert.GeneratorURL,
		})
	}
	return out
}

// KindOrder ranks the kinds of entries of the same time on a timeline:
// a timeline is sorted by time, then KindOrder, then event ID. The store
// keys timeline entries in that order.
func KindOrder(k hindsight.Kind) int { return kindOrder(k) }

func kindOrder(k hindsight.Kind) int {
	switch {
	case k.IsDeploy():
		return 0
	case k.Fires():
		return 1
	case k == hindsight.KindNote:
		return 2
	}
	return 3
}

// postmortem folds the human acts on one incident, in order of time, into
// its Postmortem. An edit made on a version that is no longer current is
// refused and recorded, never applied over the newer words: a concurrent
// edit is never lost silently.
func postmortem(acts []*hindsight.Event) hindsight.Postmortem {
	p := hindsight.Postmortem{State: hindsight.DraftStateDraft, Hidden: []string{}, Edits: []hindsight.HumanEdit{}}
	for _, e := range acts {
		h := e.Human
		rec := hindsight.HumanEdit{EventID: e.ID, Kind: e.Kind, Time: e.Time.UTC(), Author: h.Author}
		switch e.Kind {
		case hindsight.KindDraftEdited:
			if h.BaseVersion != p.Version {
				rec.Conflict = true
				rec.Reason = fmt.Sprintf("made on version %d, but version %d was current: refused, so that the newer words are not lost", h.BaseVersion, p.Version)
				break
			}
			p.Fields = *h.Fields
			p.Version++
		case hindsight.KindEntryHidden:
			if !slices.Contains(p.Hidden, h.Entry) {
				p.Hidden = append(p.Hidden, h.Entry)
			}
		case hindsight.KindEntryShown:
			p.Hidden = slices.DeleteFunc(p.Hidden, func(id string) bool { return id == h.Entry })
		case hindsight.KindDraftState:
			p.State = h.State
			if h.State == hindsight.DraftStatePublished {
				t := e.Time.UTC()
				p.PublishedAt = &t
			}
		}
		rec.Version = p.Version
		p.Edits = append(p.Edits, rec)
	}
	slices.Sort(p.Hidden)
	return p
}
