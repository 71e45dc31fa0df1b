package draft

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hindsight-sre/hindsight"
)

// Data is what a postmortem template is executed with. Custom templates
// are written against it; see Default for the built-in one.
//
// Fields of type string named below as "Markdown" are ready to print: text
// from alerts, deploys and notes in them is already escaped. Incident is
// raw: pass its text through md before it reaches the document. Human is
// the humans' own Markdown and is meant to be printed as written.
type Data struct {
	// Incident is the incident as Hindsight stored it. Raw: escape its
	// text with md.
	Incident *hindsight.Incident
	// Human holds what only a human writes. Its text is Markdown, printed
	// as written; an empty field is a TODO.
	Human hindsight.PostmortemFields
	// AsOf is the time the draft describes: an open incident has lasted
	// until AsOf.
	AsOf time.Time
	// Location is the time zone times are shown in, and Zone its name
	// ("UTC").
	Location *time.Location
	Zone     string

	Title  string // Markdown: the incident's title, or "Incident <ID>"
	ID     string // Markdown: the incident's ID
	Status string // Markdown: "open" or "resolved"
	Open   bool   // the incident is not resolved

	// Start is when impact began: Human.ImpactStart when a human corrected
	// it, else the first alert's start (Incident.StartedAt, also in
	// FirstAlert). StartCorrected reports the correction.
	Start          time.Time
	StartCorrected bool
	FirstAlert     time.Time
	// End is when the incident resolved; nil while it is open.
	End *time.Time
	// Duration runs from Start to End, or to AsOf while open.
	Duration time.Duration
	// DurationLine is Markdown: "1h13m, from 2026-11-20 10:42 UTC to
	// 2026-11-20 11:55 UTC", or "ongoing, 24m so far, since …".
	DurationLine string
	// MultiDay reports that the incident's times span more than one
	// calendar day in Location, so times carry their date.
	MultiDay bool

	// Services are the services involved (Markdown), the incident's first.
	Services []string
	// Alerts groups the incident's alert occurrences by name and severity,
	// in the order they first fired.
	Alerts []AlertGroup
	// Occurrences counts alert occurrences (a flapping alert has several).
	Occurrences int
	// Instances lists the affected instances (Markdown), at most
	// maxInstances of them; MoreInstances counts the rest.
	Instances     []string
	MoreInstances int

	// Timeline has one entry per timeline entry, in the incident's order.
	Timeline []Entry
	// Suspects are the suspected changes, ranked by score; TopSuspect the
	// one with the highest score (the nearest among equals), nil when none.
	// They are suspicions, never a root cause.
	Suspects   []Suspect
	TopSuspect *Suspect
	// Hints are observations from the data for Root Cause and Resolution
	// (Markdown sentences), such as a rollback that preceded resolution.
	Hints []string
	// ActionItems are the humans' action items; Suggestions are measures
	// the data suggests, for a human to keep or strike.
	ActionItems []ActionItem
	Suggestions []Suggestion

	// TimeToDetect and TimeToResolve are nil when unknown or not reached;
	// TimeToDetectNote and TimeToResolveNote then say why (Markdown).
	TimeToDetect      *time.Duration
	TimeToDetectNote  string
	TimeToResolve     *time.Duration
	TimeToResolveNote string
	// Started, Detected and Resolved are Markdown lines for Detection and
	// Response: a time and what it is, or why there is none.
	Started  string
	Detected string
	Resolved string
	// Lifecycle lists why the incident opened, resolved and reopened.
	Lifecycle []Transition
	// GroupedBy is Markdown: the rule and key that grouped the alerts.
	GroupedBy string
	// Related are incidents of other keys that started close to this
	// one (Markdown sentences): possibly the same outage.
	Related []string
}

// AlertGroup is the occurrences of one alert name and severity.
type AlertGroup struct {
	Name        string // Markdown
	Severity    string // Markdown; empty when the alert has none
	Instances   int    // distinct instances
	Occurrences int
	Firing      int  // occurrences still firing
	NoRunbook   bool // some occurrence had no runbook_url
	// Text is Markdown: "HighLatency (critical) on 2 instances".
	Text string
}

// Entry is one timeline entry, ready to print.
type Entry struct {
	Raw  hindsight.TimelineEntry
	Time time.Time
	// When is "10:42 (UTC)", or "2026-11-20 23:58 UTC" when the incident
	// spans days.
	When string
	// Label is the kind in words: Fired, Resolved, Deploy started, Deploy
	// succeeded, Deploy failed, Rolled back, Note.
	Label string
	// Text is Markdown: what happened.
	Text string
	// Link is Markdown: a link to the entry's URL, or the URL as plain text
	// when it is not safe to link; empty when there is none.
	Link string
	// Detection marks the entry at which the incident was detected,
	// Resolution the alert resolution that resolved it, and Reopen a firing
	// that reopened it.
	Detection  bool
	Resolution bool
	Reopen     bool
}

// Suspect is a suspected change, ready to print. It is a suspicion.
type Suspect struct {
	Raw    hindsight.SuspectedChange
	What   string // Markdown: "checkout v2.3.1"
	Time   time.Time
	Before time.Duration // before the first alert
	Score  float64
	Reason string // Markdown: why it is suspected
	// Details is Markdown: "succeeded, to production, by alice, commit
	// 9f2c1ab", leaving out what is unknown.
	Details     string
	Description string // Markdown: the deploy's description, one line
	Link        string // Markdown: a link to the deploy, or ""
	// Sentence is Markdown: "deploy of checkout v2.3.1 at 2026-11-20 10:30
	// UTC, 12m before the first alert (same service)".
	Sentence string
}

// Suggestion is a measure the data suggests, and why (both Markdown).
type Suggestion struct {
	Text string
	Why  string
}

// ActionItem is a human's action item, ready to print. Text and Owner
// are the human's Markdown on one line.
type ActionItem struct {
	Text  string
	Owner string
	Due   string // "2026-12-01", or ""
	Done  bool
}

// Transition is one lifecycle change of the incident.
type Transition struct {
	Time   time.Time
	When   string // as Entry.When
	Status string // Markdown: opened, resolved, reopened
	Reason string // Markdown
}

const (
	// maxInstances bounds the affected instances listed by name.
	maxInstances = 20
	// slowDetection is the time to detect past which the draft suggests
	// tightening detection.
	slowDetection = 10 * time.Minute
)

// newData computes what the template shows. It reads no clock: an open
// incident runs until asOf.
func newData(inc *hindsight.Incident, human hindsight.PostmortemFields, asOf time.Time, loc *time.Location) *Data {
	d := &Data{
		Incident:   inc,
		Human:      trimHuman(human),
		AsOf:       asOf,
		Location:   loc,
		Zone:       loc.String(),
		ID:         escape(inc.ID),
		Status:     escape(string(inc.Status)),
		Open:       inc.ResolvedAt == nil,
		FirstAlert: inc.StartedAt,
		Start:      inc.StartedAt,
		End:        inc.ResolvedAt,
	}
	d.Title = escape(inc.Title)
	if d.Title == "" {
		d.Title = "Incident " + d.ID
	}
	if human.ImpactStart != nil && !human.ImpactStart.IsZero() && !human.ImpactStart.Equal(inc.StartedAt) {
		d.Start, d.StartCorrected = *human.ImpactStart, true
	}
	end := asOf
	if !d.Open {
		end = *inc.ResolvedAt
	}
	d.Duration = max(end.Sub(d.Start), 0)
	d.MultiDay = spansDays(inc, d.Start, end, loc)

	d.durationLine()
	d.impact()
	d.timeline()
	d.suspects()
	d.hints()
	d.detection()
	d.actions()
	d.context()
	return d
}

// trimHuman trims the humans' text fields, so that a field of blanks is
// as empty as an unset one, and the draft's layout does not depend on
// trailing newlines.
func trimHuman(h hindsight.PostmortemFields) hindsight.PostmortemFields {
	for _, f := range []*string{&h.Summary, &h.Impact, &h.RootCause, &h.Resolution} {
		*f = strings.TrimSpace(strings.ReplaceAll(*f, "\r\n", "\n"))
	}
	return h
}

// when formats t for a list: a clock time, or the full time when the
// incident spans days.
func (d *Data) when(t time.Time) string {
	if d.MultiDay {
		return fullTime(t, d.Location)
	}
	return clock(t, d.Location) + " (" + t.In(d.Location).Format("MST") + ")"
}

// short formats t inside a sentence: "11:40 UTC", with the date when the
// incident spans days.
func (d *Data) short(t time.Time) string {
	if d.MultiDay {
		return fullTime(t, d.Location)
	}
	return t.In(d.Location).Format("15:04 MST")
}

func spansDays(inc *hindsight.Incident, start, end time.Time, loc *time.Location) bool {
	day := func(t time.Time) string { return t.In(loc).Format(time.DateOnly) }
	first := day(start)
	if day(end) != first || day(inc.StartedAt) != first {
		return true
	}
	for _, e := range inc.Timeline {
		if day(e.Time) != first {
			return true
		}
	}
	return false
}

func (d *Data) durationLine() {
	full := func(t time.Time) string { return fullTime(t, d.Location) }
	if d.Open {
		d.DurationLine = fmt.Sprintf("ongoing, %s so far, since %s", formatDuration(d.Duration), full(d.Start))
	} else {
		d.DurationLine = fmt.Sprintf("%s, from %s to %s", formatDuration(d.Duration), full(d.Start), full(*d.End))
	}
	if d.StartCorrected {
		d.DurationLine += fmt.Sprintf(" (impact start corrected by a human; the first alert fired at %s)", full(d.FirstAlert))
	}
}

func (d *Data) impact() {
	inc := d.Incident
	seen := map[string]bool{}
	var services []string
	addService := func(s string) {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			services = append(services, s)
		}
	}
	addService(inc.Service)
	first := len(services)

	type groupKey struct{ name, severity string }
	groups := map[groupKey]*AlertGroup{}
	instances := map[groupKey]map[string]bool{}
	var order []groupKey
	alerts := slices.Clone(inc.Alerts)
	slices.SortStableFunc(alerts, func(a, b hindsight.AlertSummary) int { return a.StartsAt.Compare(b.StartsAt) })
	allInstances := map[string]bool{}
	var instanceList []string
	for _, a := range alerts {
		addService(a.Labels["service"])
		k := groupKey{a.Name, a.Severity}
		g := groups[k]
		if g == nil {
			g = &AlertGroup{Name: escape(a.Name), Severity: escape(a.Severity)}
			if g.Name == "" {
				g.Name = "unnamed alert"
			}
			groups[k], instances[k] = g, map[string]bool{}
			order = append(order, k)
		}
		g.Occurrences++
		if a.EndsAt == nil {
			g.Firing++
		}
		if strings.TrimSpace(a.RunbookURL) == "" {
			g.NoRunbook = true
		}
		if inst := strings.TrimSpace(a.Instance); inst != "" {
			instances[k][inst] = true
			if !allInstances[inst] {
				allInstances[inst] = true
				instanceList = append(instanceList, inst)
			}
		}
	}
	slices.Sort(services[first:])
	for _, s := range services {
		d.Services = append(d.Services, escape(s))
	}
	for _, k := range order {
		g := groups[k]
		g.Instances = len(instances[k])
		g.Text = g.Name
		if g.Severity != "" {
			g.Text += " (" + g.Severity + ")"
		}
		var parts []string
		if g.Instances > 0 {
			parts = append(parts, "on "+plural(g.Instances, "instance"))
		}
		if g.Occurrences > max(g.Instances, 1) || g.Instances == 0 {
			parts = append(parts, "fired "+plural(g.Occurrences, "time"))
		}
		if g.Firing > 0 && !d.Open {
			// Cannot happen in a consistent incident; say so rather than hide it.
			parts = append(parts, fmt.Sprintf("%d without a recorded end", g.Firing))
		} else if g.Firing > 0 {
			parts = append(parts, fmt.Sprintf("%d still firing", g.Firing))
		}
		if len(parts) > 0 {
			g.Text += " " + strings.Join(parts, ", ")
		}
		d.Alerts = append(d.Alerts, *g)
		d.Occurrences += g.Occurrences
	}
	slices.Sort(instanceList)
	for i, inst := range instanceList {
		if i == maxInstances {
			d.MoreInstances = len(instanceList) - maxInstances
			break
		}
		d.Instances = append(d.Instances, escape(inst))
	}
}

func (d *Data) timeline() {
	inc := d.Incident
	resolution := -1
	for i, e := range inc.Timeline {
		if !d.Open && e.Kind.Ends() && e.Time.Equal(*inc.ResolvedAt) {
			resolution = i
		}
	}
	reopens := map[int]bool{}
	for _, lc := range inc.Lifecycle {
		if lc.Status != "reopened" {
			continue
		}
		for i, e := range inc.Timeline {
			if e.Kind.Fires() && e.Time.Equal(lc.Time) {
				reopens[i] = true
				break
			}
		}
	}
	for i, e := range inc.Timeline {
		if e.Hidden {
			// A human hid it from the draft as noise; it stays on the
			// incident's timeline.
			continue
		}
		label, text := describe(e)
		linkText := "link"
		switch {
		case e.Kind.IsAlert():
			linkText = "source"
		case e.Kind.IsDeploy():
			linkText = "deploy"
		}
		var l string
		if strings.TrimSpace(e.URL) != "" {
			l = link(linkText, e.URL)
		}
		d.Timeline = append(d.Timeline, Entry{
			Raw:        e,
			Time:       e.Time,
			When:       d.when(e.Time),
			Label:      label,
			Text:       text,
			Link:       l,
			Detection:  e.Detection,
			Resolution: i == resolution,
			Reopen:     reopens[i],
		})
	}
	for _, lc := range inc.Lifecycle {
		d.Lifecycle = append(d.Lifecycle, Transition{
			Time:   lc.Time,
			When:   d.when(lc.Time),
			Status: escape(lc.Status),
			Reason: escape(lc.Reason),
		})
	}
}

// describe puts an entry's kind in words and says what happened.
func describe(e hindsight.TimelineEntry) (label, text string) {
	text = escape(e.Summary)
	switch e.Kind {
	case hindsight.KindAlertFiring, hindsight.KindAlertResolved:
		label = "Fired"
		if e.Kind == hindsight.KindAlertResolved {
			label = "Resolved"
		}
		name := strings.TrimSpace(e.Labels["alertname"])
		if name == "" {
			break
		}
		var detail []string
		for _, l := range []string{"severity", "instance"} {
			if v := escape(e.Labels[l]); v != "" {
				detail = append(detail, v)
			}
		}
		head := escape(name)
		if len(detail) > 0 {
			head += " (" + strings.Join(detail, ", ") + ")"
		}
		if text == "" || strings.TrimSpace(e.Summary) == name {
			text = head
		} else {
			text = head + ": " + text
		}
	case hindsight.KindDeployStarted:
		label = "Deploy started"
	case hindsight.KindDeploySucceeded:
		label = "Deploy succeeded"
	case hindsight.KindDeployFailed:
		label = "Deploy failed"
	case hindsight.KindDeployRolledBack:
		label = "Rolled back"
	case hindsight.KindNote:
		label = "Note"
	default:
		label = kindWords(e.Kind)
	}
	if text == "" {
		text = "(no summary)"
	}
	return label, text
}

// kindWords turns an unknown kind such as "incident.declared" into
// "Incident declared".
func kindWords(k hindsight.Kind) string {
	s := strings.NewReplacer(".", " ", "_", " ").Replace(string(k))
	s = escape(s)
	if s == "" {
		return "Event"
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

func (d *Data) suspects() {
	var top int
	for i, c := range d.Incident.SuspectedChanges {
		s := Suspect{
			Raw:         c,
			What:        escape(strings.TrimSpace(c.Service + " " + c.Version)),
			Time:        c.Time,
			Before:      time.Duration(c.MinutesBefore * float64(time.Minute)),
			Score:       c.Score,
			Reason:      escape(c.Reason),
			Description: escape(c.Description),
		}
		if s.What == "" {
			s.What = "an unnamed service"
		}
		var details []string
		for _, p := range []struct{ prefix, v string }{
			{"", strings.ReplaceAll(c.Status, "_", " ")},
			{"to ", c.Environment},
			{"by ", c.Actor},
			{"commit ", c.Commit},
		} {
			if v := escape(p.v); v != "" {
				details = append(details, p.prefix+v)
			}
		}
		s.Details = strings.Join(details, ", ")
		if strings.TrimSpace(c.URL) != "" {
			s.Link = link("deploy", c.URL)
		}
		what := "deploy"
		switch c.Status {
		case "failed":
			what = "failed deploy"
		case "rolled_back":
			what = "rolled-back deploy"
		}
		// The reason already says how long before the first alert.
		s.Sentence = fmt.Sprintf("%s of %s at %s", what, s.What, fullTime(c.Time, d.Location))
		if s.Reason != "" {
			s.Sentence += " (" + s.Reason + ")"
		} else {
			s.Sentence += ", " + formatDuration(s.Before) + " before the first alert"
		}
		d.Suspects = append(d.Suspects, s)
		if c.Score > d.Incident.SuspectedChanges[top].Score {
			top = i
		}
	}
	if len(d.Suspects) > 0 {
		d.TopSuspect = &d.Suspects[top]
	}
}

func (d *Data) hints() {
	inc := d.Incident
	from := d.Start
	if d.FirstAlert.Before(from) {
		from = d.FirstAlert
	}
	for _, e := range inc.Timeline {
		var what string
		switch e.Kind {
		case hindsight.KindDeployRolledBack:
			what = "A rollback"
		case hindsight.KindDeployFailed:
			what = "A failed deploy"
		default:
			continue
		}
		if e.Time.Before(from) {
			continue
		}
		var hint string
		switch {
		case !d.Open && !e.Time.After(*inc.ResolvedAt):
			hint = fmt.Sprintf("%s at %s preceded resolution at %s by %s",
				what, d.short(e.Time), d.short(*inc.ResolvedAt), formatDuration(inc.ResolvedAt.Sub(e.Time)))
		case d.Open && !e.Time.After(d.AsOf):
			hint = fmt.Sprintf("%s at %s has not resolved the incident yet, %s later (as of %s)",
				what, d.short(e.Time), formatDuration(d.AsOf.Sub(e.Time)), d.short(d.AsOf))
		default:
			continue
		}
		if s := escape(e.Summary); s != "" {
			hint += ": " + s
		}
		d.Hints = append(d.Hints, hint+".")
	}
	if len(inc.SuspectedChanges) == 0 {
		svc := "its service"
		if s := escape(inc.Service); s != "" {
			svc = s
		}
		d.Hints = append(d.Hints, fmt.Sprintf("Hindsight linked no deploy to this incident: it recorded no deploy of %s in the lookback window before the first alert. Look for changes it does not see: configuration, feature flags, dependencies, traffic.", svc))
	}
}

func (d *Data) detection() {
	inc := d.Incident
	full := func(t time.Time) string { return fullTime(t, d.Location) }

	d.Started = full(d.Start)
	if d.StartCorrected {
		d.Started += fmt.Sprintf(" (corrected by a human; the first alert fired at %s)", full(d.FirstAlert))
	} else if len(inc.Alerts) > 0 {
		d.Started += " (the first alert started firing)"
	}

	backfilled := !d.Open && inc.DetectedAt != nil && inc.DetectedAt.After(*inc.ResolvedAt)
	switch {
	case inc.DetectedAt == nil && d.Open:
		d.Detected = "not yet: no notification received"
	case inc.DetectedAt == nil:
		d.Detected = "unknown: no notification time recorded"
	case backfilled:
		d.Detected = full(*inc.DetectedAt) + " (the first notification, received after the incident resolved)"
	default:
		d.Detected = full(*inc.DetectedAt) + " (the first notification received)"
	}
	switch {
	case d.Open:
		d.Resolved = "not yet: ongoing as of " + full(d.AsOf)
	default:
		d.Resolved = full(*inc.ResolvedAt)
	}

	// Time to detect is the first notification received minus the
	// incident start; when a human corrected the start, it is measured
	// from the corrected one.
	if inc.TimeToDetect != nil {
		ttd := inc.TimeToDetect.Duration()
		if d.StartCorrected && inc.DetectedAt != nil {
			ttd = inc.DetectedAt.Sub(d.Start)
		}
		d.TimeToDetect = &ttd
	} else {
		switch {
		case backfilled:
			d.TimeToDetectNote = "unknown: the first notification arrived after the incident resolved (backfilled)"
		case inc.DetectedAt == nil && d.Open:
			d.TimeToDetectNote = "not yet: no notification received"
		case inc.DetectedAt == nil:
			d.TimeToDetectNote = "unknown: no notification time recorded"
		default:
			d.TimeToDetectNote = "unknown: not recorded (the events may have been replayed or backfilled)"
		}
	}
	switch {
	case d.Open:
		d.TimeToResolveNote = fmt.Sprintf("not yet: ongoing for %s as of %s", formatDuration(d.Duration), full(d.AsOf))
	case d.StartCorrected || inc.TimeToResolve == nil:
		ttr := inc.ResolvedAt.Sub(d.Start)
		d.TimeToResolve = &ttr
	default:
		ttr := inc.TimeToResolve.Duration()
		d.TimeToResolve = &ttr
	}
}

func (d *Data) actions() {
	inc := d.Incident
	for _, a := range d.Human.ActionItems {
		item := ActionItem{Text: oneLine(a.Text), Owner: oneLine(a.Owner), Done: a.Done}
		if item.Text == "" {
			item.Text = "TODO: describe this action item"
		}
		if a.Due != nil && !a.Due.IsZero() {
			item.Due = a.Due.In(d.Location).Format(time.DateOnly)
		}
		d.ActionItems = append(d.ActionItems, item)
	}

	if s := d.TopSuspect; s != nil {
		d.Suggestions = append(d.Suggestions, Suggestion{
			Text: "Review the change process for " + s.What,
			Why:  fmt.Sprintf("it is the top suspected change, deployed %s before the first alert; a suspicion, not a confirmed cause", formatDuration(s.Before)),
		})
	}
	switch lag := d.FirstAlert.Sub(d.Start); {
	case d.StartCorrected && lag > slowDetection:
		d.Suggestions = append(d.Suggestions, Suggestion{
			Text: "Tighten detection",
			Why:  fmt.Sprintf("the first alert fired %s after impact began at %s, as corrected by a human", formatDuration(lag), d.short(d.Start)),
		})
	case d.TimeToDetect != nil && *d.TimeToDetect > slowDetection:
		d.Suggestions = append(d.Suggestions, Suggestion{
			Text: "Tighten detection",
			Why:  fmt.Sprintf("the first notification arrived %s after impact began; check the alert's `for:` duration and Alertmanager's group_wait", formatDuration(*d.TimeToDetect)),
		})
	}
	if inc.Reopened > 0 {
		d.Suggestions = append(d.Suggestions, Suggestion{
			Text: "Alert flapping: review the thresholds and `for:` durations of " + strings.Join(d.flapping(), ", "),
			Why:  fmt.Sprintf("the incident reopened %s", plural(inc.Reopened, "time")),
		})
	}
	seen := map[string]bool{}
	for _, g := range d.Alerts {
		if g.NoRunbook && !seen[g.Name] {
			seen[g.Name] = true
			d.Suggestions = append(d.Suggestions, Suggestion{
				Text: "Add a runbook to " + g.Name,
				Why:  "it fired without a runbook_url annotation",
			})
		}
	}
}

// flapping names the alerts that fired more than once for the same series,
// or every alert when none did.
func (d *Data) flapping() []string {
	count := map[string]int{}
	for _, a := range d.Incident.Alerts {
		count[a.Fingerprint]++
	}
	var names []string
	seen := map[string]bool{}
	for _, a := range d.Incident.Alerts {
		if count[a.Fingerprint] > 1 && !seen[a.Name] {
			seen[a.Name] = true
			names = append(names, escape(a.Name))
		}
	}
	if len(names) == 0 {
		for _, g := range d.Alerts {
			if !seen[g.Name] {
				seen[g.Name] = true
				names = append(names, g.Name)
			}
		}
	}
	if len(names) == 0 {
		names = []string{"its alerts"}
	}
	slices.Sort(names)
	return names
}

func (d *Data) context() {
	inc := d.Incident
	rule := "the default rule"
	if inc.Rule != "" {
		rule = "rule " + escape(inc.Rule)
	}
	keys := make([]string, 0, len(inc.KeyLabels))
	for k, v := range inc.KeyLabels {
		keys = append(keys, escape(k)+"="+escape(v))
	}
	slices.Sort(keys)
	d.GroupedBy = rule
	if len(keys) > 0 {
		d.GroupedBy += ", key " + strings.Join(keys, ", ")
	} else if inc.Key != "" {
		d.GroupedBy += ", key " + escape(inc.Key)
	}
	for _, r := range inc.Related {
		line := fmt.Sprintf("%s (%s, %s): %s", escape(cmpOr(r.Title, r.ID)), escape(r.ID), escape(string(r.Status)), escape(r.Reason))
		d.Related = append(d.Related, line+".")
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
