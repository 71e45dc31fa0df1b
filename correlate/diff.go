package correlate

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// DiffReport is what changes when the same events are folded under a
// candidate configuration instead of the current (base) one: the
// incidents an on-call engineer would see merged, split, newly opened or
// no longer opened, and those that stay one incident but read
// differently. Only incidents that opened (open or resolved) count as
// incidents; those that open_after holds back (pending, suppressed) and
// alerts a rule ignores count as not opened.
//
// Incidents of the two sides are matched by the alert occurrences they
// hold (fingerprint@startsAt), never by ID: a change of rule changes the
// key, and so the ID, of an incident whose alerts stay together.
//
// Every list is sorted by start, then ID, and is never null in JSON, so
// the same two sets of incidents give the same bytes.
type DiffReport struct {
	Counts DiffCounts `json:"counts"`
	// Merged: several base incidents whose alerts open one candidate
	// incident.
	Merged []Merge `json:"merged"`
	// Split: one base incident whose alerts open several candidate
	// incidents.
	Split []Split `json:"split"`
	// NewlyOpened: candidate incidents whose alerts opened nothing in the
	// base.
	NewlyOpened []OpenChange `json:"newly_opened"`
	// NoLongerOpened: base incidents whose alerts open nothing in the
	// candidate.
	NoLongerOpened []OpenChange `json:"no_longer_opened"`
	// Changed: one base incident that is one candidate incident, with a
	// different status, severity, start, end, title or set of alerts.
	Changed []Changed `json:"changed"`
	// SuspectMoved: one base incident that is one candidate incident whose
	// top suspected change is another deploy (or none, or one where there
	// was none).
	SuspectMoved []SuspectMove `json:"suspected_change_moved"`
}

// DiffCounts sums a DiffReport up.
type DiffCounts struct {
	// Base and Candidate count the incidents that opened on each side;
	// BaseHeld and CandidateHeld those held back (pending or suppressed).
	Base          int `json:"base"`
	BaseHeld      int `json:"base_held"`
	Candidate     int `json:"candidate"`
	CandidateHeld int `json:"candidate_held"`
	// Unchanged counts the base incidents that are one candidate incident
	// with nothing listed in Changed or SuspectMoved.
	Unchanged      int `json:"unchanged"`
	Merged         int `json:"merged"`
	Split          int `json:"split"`
	NewlyOpened    int `json:"newly_opened"`
	NoLongerOpened int `json:"no_longer_opened"`
	Changed        int `json:"changed"`
	SuspectMoved   int `json:"suspected_change_moved"`
}

// IncidentRef is enough of an incident to recognise it in a list.
type IncidentRef struct {
	ID         string           `json:"id"`
	Title      string           `json:"title"`
	Service    string           `json:"service"`
	Status     hindsight.Status `json:"status"`
	Severity   string           `json:"severity"`
	Key        string           `json:"key"`
	Rule       string           `json:"rule"` // "" is the default rule
	StartedAt  time.Time        `json:"started_at"`
	ResolvedAt *time.Time       `json:"resolved_at"`
	Alerts     int              `json:"alerts"` // alert occurrences
	// TopSuspect is the suspected change ranked first, if any.
	TopSuspect *SuspectRef `json:"top_suspect,omitempty"`
}

// SuspectRef names a suspected change and its score.
type SuspectRef struct {
	EventID     string    `json:"event_id"`
	Service     string    `json:"service"`
	Environment string    `json:"environment,omitempty"`
	Version     string    `json:"version,omitempty"`
	Status      string    `json:"status"`
	Time        time.Time `json:"time"`
	Score       float64   `json:"score"`
	Reason      string    `json:"reason"`
}

// Merge is one candidate incident made of several base incidents' alerts.
type Merge struct {
	Into IncidentRef   `json:"into"`
	From []IncidentRef `json:"from"`
}

// Split is one base incident whose alerts are several candidate
// incidents.
type Split struct {
	From IncidentRef   `json:"from"`
	Into []IncidentRef `json:"into"`
}

// OpenChange is an incident that opens on one side only.
type OpenChange struct {
	Incident IncidentRef `json:"incident"`
	// Why says what the other side made of its alerts: suppressed,
	// pending or ignored, comma-separated when they went several ways.
	Why string `json:"why"`
	// Reason is the other side's own word for it: the last lifecycle
	// reason of the first incident holding its alerts back.
	Reason string `json:"reason"`
	// Other are the other side's incidents holding its alerts back.
	Other []IncidentRef `json:"other"`
}

// Changed is one base incident that is one candidate incident, read
// differently.
type Changed struct {
	Base      IncidentRef   `json:"base"`
	Candidate IncidentRef   `json:"candidate"`
	Fields    []FieldChange `json:"fields"`
}

// FieldChange is one field that differs; "" is none (no end while open).
type FieldChange struct {
	Field string `json:"field"` // status, severity, started_at, resolved_at, title, alerts
	Old   string `json:"old"`
	New   string `json:"new"`
}

// SuspectMove is an incident whose top suspected change is another.
type SuspectMove struct {
	Base      IncidentRef `json:"base"`
	Candidate IncidentRef `json:"candidate"`
	Old       *SuspectRef `json:"old"` // null: none
	New       *SuspectRef `json:"new"` // null: none
}

// Empty reports whether nothing differs.
func (r DiffReport) Empty() bool {
	return len(r.Merged)+len(r.Split)+len(r.NewlyOpened)+len(r.NoLongerOpened)+len(r.Changed)+len(r.SuspectMoved) == 0
}

// Diff compares the incidents folded (and enriched) from the same events
// under two configurations. It is pure: the same incidents, in any order,
// give the same report.
func Diff(base, cand []hindsight.Incident) DiffReport {
	b, c := newSide(base), newSide(cand)
	r := DiffReport{
		Merged: []Merge{}, Split: []Split{}, NewlyOpened: []OpenChange{}, NoLongerOpened: []OpenChange{},
		Changed: []Changed{}, SuspectMoved: []SuspectMove{},
	}
	r.Counts.Base, r.Counts.BaseHeld = len(b.opened), len(b.held)
	r.Counts.Candidate, r.Counts.CandidateHeld = len(c.opened), len(c.held)

	// The opened incidents of both sides are nodes of a bipartite graph,
	// with an edge between two that share an alert occurrence.
	bToC := links(b.opened, c)
	cToB := links(c.opened, b)

	for i, ci := range c.opened {
		if len(cToB[i]) > 1 {
			m := Merge{Into: ref(ci), From: make([]IncidentRef, 0, len(cToB[i]))}
			for _, j := range cToB[i] {
				m.From = append(m.From, ref(b.opened[j]))
			}
			r.Merged = append(r.Merged, m)
		}
		if len(cToB[i]) == 0 {
			r.NewlyOpened = append(r.NewlyOpened, openChange(ci, b))
		}
	}
	for i, bi := range b.opened {
		switch js := bToC[i]; {
		case len(js) == 0:
			r.NoLongerOpened = append(r.NoLongerOpened, openChange(bi, c))
		case len(js) > 1:
			s := Split{From: ref(bi), Into: make([]IncidentRef, 0, len(js))}
			for _, j := range js {
				s.Into = append(s.Into, ref(c.opened[j]))
			}
			r.Split = append(r.Split, s)
		case len(cToB[js[0]]) == 1:
			ci := c.opened[js[0]]
			same := true
			if f := fieldChanges(bi, ci); len(f) > 0 {
				r.Changed = append(r.Changed, Changed{Base: ref(bi), Candidate: ref(ci), Fields: f})
				same = false
			}
			if old, nw := topSuspect(bi), topSuspect(ci); suspectID(old) != suspectID(nw) {
				r.SuspectMoved = append(r.SuspectMoved, SuspectMove{Base: ref(bi), Candidate: ref(ci), Old: old, New: nw})
				same = false
			}
			if same {
				r.Counts.Unchanged++
			}
		}
	}
	r.Counts.Merged, r.Counts.Split = len(r.Merged), len(r.Split)
	r.Counts.NewlyOpened, r.Counts.NoLongerOpened = len(r.NewlyOpened), len(r.NoLongerOpened)
	r.Counts.Changed, r.Counts.SuspectMoved = len(r.Changed), len(r.SuspectMoved)
	return r
}

// side is one configuration's incidents, indexed by alert occurrence.
type side struct {
	opened, held []*hindsight.Incident // sorted by start, then ID
	owner        map[string]*hindsight.Incident
}

func newSide(incs []hindsight.Incident) side {
	s := side{owner: map[string]*hindsight.Incident{}}
	sorted := slices.Clone(incs)
	sortIncidents(sorted)
	for i := range sorted {
		inc := &sorted[i]
		if inc.Status.Opened() {
			s.opened = append(s.opened, inc)
		} else {
			s.held = append(s.held, inc)
		}
		for _, a := range inc.Alerts {
			s.owner[occurrenceOf(a)] = inc
		}
	}
	return s
}

// links returns, for each incident of incs, the indexes of other's opened
// incidents that share an alert occurrence with it, in other's order.
func links(incs []*hindsight.Incident, other side) [][]int {
	index := make(map[*hindsight.Incident]int, len(other.opened))
	for i, inc := range other.opened {
		index[inc] = i
	}
	out := make([][]int, len(incs))
	for i, inc := range incs {
		for _, a := range inc.Alerts {
			o := other.owner[occurrenceOf(a)]
			if o == nil || !o.Status.Opened() {
				continue
			}
			if j := index[o]; !slices.Contains(out[i], j) {
				out[i] = append(out[i], j)
			}
		}
		slices.Sort(out[i])
	}
	return out
}

// openChange describes inc, which opened on its side, by what other made
// of its alerts: incidents held back, or nothing (a rule ignores them).
func openChange(inc *hindsight.Incident, other side) OpenChange {
	oc := OpenChange{Incident: ref(inc), Other: []IncidentRef{}}
	var held []*hindsight.Incident
	ignored := 0
	for _, a := range inc.Alerts {
		o := other.owner[occurrenceOf(a)]
		if o == nil {
			ignored++
		} else if !slices.Contains(held, o) {
			held = append(held, o)
		}
	}
	slices.SortFunc(held, func(a, b *hindsight.Incident) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.ID, b.ID))
	})
	var why []string
	for _, st := range []hindsight.Status{hindsight.StatusSuppressed, hindsight.StatusPending} {
		if slices.ContainsFunc(held, func(h *hindsight.Incident) bool { return h.Status == st }) {
			why = append(why, string(st))
		}
	}
	if ignored > 0 {
		why = append(why, "ignored")
	}
	oc.Why = strings.Join(why, ",")
	for _, h := range held {
		oc.Other = append(oc.Other, ref(h))
		if oc.Reason == "" && len(h.Lifecycle) > 0 {
			oc.Reason = h.Lifecycle[len(h.Lifecycle)-1].Reason
		}
	}
	if oc.Reason == "" && ignored > 0 {
		oc.Reason = fmt.Sprintf("a rule ignores its alerts (%d of %d)", ignored, len(inc.Alerts))
	}
	return oc
}

func ref(inc *hindsight.Incident) IncidentRef {
	return IncidentRef{
		ID: inc.ID, Title: inc.Title, Service: inc.Service, Status: inc.Status, Severity: inc.Severity,
		Key: inc.Key, Rule: inc.Rule, StartedAt: inc.StartedAt, ResolvedAt: inc.ResolvedAt,
		Alerts: len(inc.Alerts), TopSuspect: topSuspect(inc),
	}
}

func topSuspect(inc *hindsight.Incident) *SuspectRef {
	if len(inc.SuspectedChanges) == 0 {
		return nil
	}
	s := inc.SuspectedChanges[0]
	return &SuspectRef{EventID: s.EventID, Service: s.Service, Environment: s.Environment, Version: s.Version,
		Status: s.Status, Time: s.Time, Score: s.Score, Reason: s.Reason}
}

func suspectID(s *SuspectRef) string {
	if s == nil {
		return ""
	}
	return s.EventID
}

// fieldChanges lists what differs between two incidents made of the same
// alerts (or nearly).
func fieldChanges(a, b *hindsight.Incident) []FieldChange {
	var out []FieldChange
	add := func(field, old, nw string) {
		if old != nw {
			out = append(out, FieldChange{Field: field, Old: old, New: nw})
		}
	}
	add("status", string(a.Status), string(b.Status))
	add("severity", a.Severity, b.Severity)
	add("started_at", fmtTime(&a.StartedAt), fmtTime(&b.StartedAt))
	add("resolved_at", fmtTime(a.ResolvedAt), fmtTime(b.ResolvedAt))
	add("title", a.Title, b.Title)
	if !sameAlerts(a, b) {
		out = append(out, FieldChange{Field: "alerts", Old: fmt.Sprint(len(a.Alerts)), New: fmt.Sprint(len(b.Alerts))})
	}
	return out
}

func sameAlerts(a, b *hindsight.Incident) bool {
	occ := func(inc *hindsight.Incident) []string {
		s := make([]string, len(inc.Alerts))
		for i, x := range inc.Alerts {
			s[i] = occurrenceOf(x)
		}
		slices.Sort(s)
		return s
	}
	return slices.Equal(occ(a), occ(b))
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// WriteText prints the report for a terminal: a line of counts, then one
// section per kind of difference that has any, or "no change".
func (r DiffReport) WriteText(w io.Writer) error {
	p := &printer{w: w}
	c := r.Counts
	p.f("current rules: %s opened%s; candidate rules: %s opened%s\n",
		plural(c.Base, "incident"), heldNote(c.BaseHeld), plural(c.Candidate, "incident"), heldNote(c.CandidateHeld))
	if r.Empty() {
		p.f("no change: every incident opens and reads the same (%d unchanged)\n", c.Unchanged)
		return p.err
	}
	var parts []string
	for _, n := range []struct {
		n    int
		what string
	}{
		{c.Merged, "merged"}, {c.Split, "split"}, {c.NewlyOpened, "newly opened"}, {c.NoLongerOpened, "no longer opened"},
		{c.Changed, "changed"}, {c.SuspectMoved, "suspected change moved"}, {c.Unchanged, "unchanged"},
	} {
		if n.n > 0 || n.what == "unchanged" {
			parts = append(parts, fmt.Sprintf("%d %s", n.n, n.what))
		}
	}
	p.f("%s\n", strings.Join(parts, ", "))

	if len(r.Merged) > 0 {
		p.section("Merged: several current incidents become one", len(r.Merged))
		for _, m := range r.Merged {
			p.incident("  ", m.Into)
			for _, f := range m.From {
				p.incident("      from ", f)
			}
		}
	}
	if len(r.Split) > 0 {
		p.section("Split: one current incident becomes several", len(r.Split))
		for _, s := range r.Split {
			p.incident("  ", s.From)
			for _, i := range s.Into {
				p.incident("      into ", i)
			}
		}
	}
	if len(r.NewlyOpened) > 0 {
		p.section("Newly opened: alerts that open no incident under the current rules", len(r.NewlyOpened))
		for _, o := range r.NewlyOpened {
			p.incident("  ", o.Incident)
			p.f("      current rules: %s: %s\n", o.Why, o.Reason)
		}
	}
	if len(r.NoLongerOpened) > 0 {
		p.section("No longer opened: incidents the candidate holds back or ignores", len(r.NoLongerOpened))
		for _, o := range r.NoLongerOpened {
			p.incident("  ", o.Incident)
			p.f("      candidate rules: %s: %s\n", o.Why, o.Reason)
		}
	}
	if len(r.Changed) > 0 {
		p.section("Changed: the same incident, read differently", len(r.Changed))
		for _, ch := range r.Changed {
			p.incident("  ", ch.Base)
			if ch.Candidate.ID != ch.Base.ID {
				p.f("      now %s (%s)\n", ch.Candidate.ID, keyRule(ch.Candidate))
			}
			for _, f := range ch.Fields {
				p.f("      %s: %s → %s\n", fieldName(f.Field), fieldValue(f.Field, f.Old), fieldValue(f.Field, f.New))
			}
		}
	}
	if len(r.SuspectMoved) > 0 {
		p.section("Suspected change moved: another deploy ranks first", len(r.SuspectMoved))
		for _, s := range r.SuspectMoved {
			p.incident("  ", s.Base)
			p.f("      %s → %s\n", suspectText(s.Old), suspectText(s.New))
		}
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) section(title string, n int) { p.f("\n%s (%d)\n", title, n) }

func (p *printer) incident(prefix string, r IncidentRef) {
	p.f("%s%s  %s  %s  %s, %s [%s]\n", prefix, r.ID, r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"), r.Title,
		r.Status, plural(r.Alerts, "alert"), keyRule(r))
}

func keyRule(r IncidentRef) string {
	if r.Rule == "" {
		return "key " + r.Key + ", default rule"
	}
	return "key " + r.Key + ", rule " + r.Rule
}

func heldNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d held back)", n)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func fieldName(f string) string {
	switch f {
	case "started_at":
		return "start"
	case "resolved_at":
		return "end"
	}
	return f
}

func fieldValue(field, v string) string {
	if v == "" {
		switch field {
		case "resolved_at":
			return "none (open)"
		case "severity":
			return "none"
		}
		return `""`
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil && strings.HasSuffix(field, "_at") {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return v
}

func suspectText(s *SuspectRef) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("%s %s at %s (score %.2f)", s.Service, cmp.Or(s.Version, s.Status),
		s.Time.UTC().Format("2006-01-02 15:04 UTC"), s.Score)
}
