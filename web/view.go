package web

import (
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"href":  safeURL,
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"day":   func(t *time.Time) string { return formatOptional(t, time.DateOnly) },
	"isoOf": func(t *time.Time) string { return formatOptional(t, time.RFC3339) },
	"dur":   hindsight.FormatDuration,
}).ParseFS(templateFS, "templates/*.html"))

func formatOptional(t *time.Time, layout string) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

// safeURL returns s if it is an absolute http or https URL, else "":
// links come from alerts and deploys, which anyone who can send a
// webhook writes.
func safeURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.String()
}

// draftState is where an incident's postmortem stands; an incident folded
// before draft states existed is a draft.
func draftState(inc *hindsight.Incident) hindsight.DraftState {
	if inc.Postmortem.State == "" {
		return hindsight.DraftStateDraft
	}
	return inc.Postmortem.State
}

// filter is the incidents page's query: service and status the store
// filters by; severity and state the page filters the store's pages by.
type filter struct {
	Service  string
	Status   hindsight.Status
	Severity string
	State    hindsight.DraftState
	Cursor   string
}

func filterFrom(q url.Values) filter {
	f := filter{
		Service: strings.TrimSpace(q.Get("service")), Severity: strings.TrimSpace(q.Get("severity")),
		State: hindsight.DraftState(q.Get("state")), Cursor: q.Get("cursor"),
	}
	if s := hindsight.Status(q.Get("status")); s.Opened() {
		f.Status = s
	}
	if !f.State.Valid() {
		f.State = ""
	}
	return f
}

func (f filter) keeps(inc *hindsight.Incident) bool {
	return (f.Severity == "" || strings.EqualFold(f.Severity, inc.Severity)) && (f.State == "" || f.State == draftState(inc))
}

// URL is the incidents page (base "/") or its rows (base
// "/fragments/incidents") with f's filters, from cursor.
func (f filter) URL(base, cursor string) string {
	q := url.Values{}
	for k, v := range map[string]string{"service": f.Service, "status": string(f.Status), "severity": f.Severity, "state": string(f.State), "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

// States lists the draft states, for the filter's choices.
func (filter) States() []hindsight.DraftState {
	return []hindsight.DraftState{hindsight.DraftStateDraft, hindsight.DraftStateReview, hindsight.DraftStatePublished}
}

type listView struct {
	Filter filter
	Rows   []row
	Next   string
	Now    time.Time
}

// row is one incident of the incidents page.
type row struct {
	*hindsight.Incident
	Duration string
	TTD      string
	State    hindsight.DraftState
}

func newRow(inc *hindsight.Incident, now time.Time) row {
	return row{Incident: inc, Duration: duration(inc, now), TTD: seconds(inc.TimeToDetect), State: draftState(inc)}
}

// duration is how long impact lasted, or has lasted by now: from the
// impact start a human corrected, else the incident's start.
func duration(inc *hindsight.Incident, now time.Time) string {
	end := now
	if inc.ResolvedAt != nil {
		end = *inc.ResolvedAt
	}
	return hindsight.FormatDuration(end.Sub(inc.Postmortem.ImpactStart(inc.StartedAt)))
}

func seconds(s *hindsight.Seconds) string {
	if s == nil {
		return ""
	}
	return hindsight.FormatDuration(s.Duration())
}

// incidentView is an incident's page and its editor.
type incidentView struct {
	*hindsight.Incident
	Now         time.Time
	Editing     bool
	State       hindsight.DraftState
	ImpactStart time.Time
	Corrected   bool // a human corrected the impact start
	Duration    string
	TTD, TTR    string
	TopSuspect  string // event ID of the likeliest suspected change
	Picture     picture
	// CanEnd: declared by hand and still going on.
	CanEnd   bool
	Draft    string
	HasDraft bool
}

func (u *ui) incidentView(inc *hindsight.Incident, editing bool) *incidentView {
	now := u.o.Now().UTC()
	v := &incidentView{
		Incident: inc, Now: now, Editing: editing, State: draftState(inc),
		ImpactStart: inc.Postmortem.ImpactStart(inc.StartedAt), Corrected: inc.Postmortem.Fields.ImpactStart != nil,
		Duration: duration(inc, now), TTD: seconds(inc.TimeToDetect), TTR: seconds(inc.TimeToResolve),
		TopSuspect: topSuspect(inc.SuspectedChanges),
	}
	for _, a := range inc.Alerts {
		v.CanEnd = v.CanEnd || (hindsight.IsDeclared(a.Fingerprint) && a.EndsAt == nil)
	}
	v.Picture = draw(inc, v.ImpactStart, v.TopSuspect, now)
	return v
}

// topSuspect is the suspected change with the highest score (the nearest
// of equals: the list is nearest first).
func topSuspect(cs []hindsight.SuspectedChange) string {
	top := -1
	for i, c := range cs {
		if top < 0 || c.Score > cs[top].Score {
			top = i
		}
	}
	if top < 0 {
		return ""
	}
	return cs[top].EventID
}

// Resolved reports whether the incident has resolved: only then can its
// postmortem be published.
func (v *incidentView) Resolved() bool { return v.Status == hindsight.StatusResolved }

// BlankItem is the editor's new action item row.
func (*incidentView) BlankItem() hindsight.ActionItem { return hindsight.ActionItem{} }

// When is an entry's time: the clock, and the day too when it is not the
// day the incident started.
func (v *incidentView) When(t time.Time) string {
	if t.UTC().Format(time.DateOnly) == v.StartedAt.UTC().Format(time.DateOnly) {
		return t.UTC().Format("15:04:05")
	}
	return t.UTC().Format("01-02 15:04:05")
}
