package draft

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/hindsight-sre/hindsight"
)

//go:embed postmortem.md.tmpl
var defaultTemplate string

// Default returns the source of the built-in template, to copy as the
// start of a custom one.
func Default() string { return defaultTemplate }

// Options configure a Renderer.
type Options struct {
	// Template is the source of a text/template executed with *Data. Empty
	// means the built-in template (see Default).
	Template string
	// Location is the time zone of every time in the draft. Nil means UTC.
	Location *time.Location
}

// Renderer renders postmortem drafts. It is safe for concurrent use.
type Renderer struct {
	tmpl *template.Template
	loc  *time.Location
}

// New parses the template of opts. A template that does not parse, or
// that fails on a sample incident (a misspelt field, say), is reported
// here rather than at the first render.
func New(opts Options) (*Renderer, error) {
	r := &Renderer{loc: opts.Location}
	if r.loc == nil {
		r.loc = time.UTC
	}
	src, what := opts.Template, "custom postmortem template"
	if src == "" {
		src, what = defaultTemplate, "built-in postmortem template"
	}
	tmpl, err := template.New("postmortem").Option("missingkey=error").Funcs(r.funcs()).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", what, err)
	}
	r.tmpl = tmpl
	for _, s := range samples() {
		if err := r.execute(io.Discard, s.inc, s.human, s.asOf); err != nil {
			return nil, fmt.Errorf("check %s on a sample %s incident: %w", what, s.inc.Status, err)
		}
	}
	return r, nil
}

// Render writes the postmortem draft of inc, with the human's fields, to
// w. An open incident's duration runs until asOf: Render reads no clock,
// so the same arguments always give the same bytes. Nothing is written
// when rendering fails.
func (r *Renderer) Render(w io.Writer, inc *hindsight.Incident, human hindsight.PostmortemFields, asOf time.Time) error {
	if inc == nil {
		return errors.New("render postmortem: no incident")
	}
	if inc.ResolvedAt == nil && asOf.IsZero() {
		return fmt.Errorf("render postmortem of %s: the incident is open and asOf is zero", inc.ID)
	}
	var buf bytes.Buffer
	if err := r.execute(&buf, inc, human, asOf); err != nil {
		return fmt.Errorf("render postmortem of %s: %w", inc.ID, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func (r *Renderer) execute(w io.Writer, inc *hindsight.Incident, human hindsight.PostmortemFields, asOf time.Time) error {
	return r.tmpl.Execute(w, newData(inc, human, asOf, r.loc))
}

// funcs are the helpers templates may call. They are documented in the
// package documentation.
func (r *Renderer) funcs() template.FuncMap {
	return template.FuncMap{
		"md":      func(v any) string { return escape(toText(v)) },
		"oneline": func(v any) string { return oneLine(toText(v)) },
		"prose":   func(v any) string { return prose(toText(v)) },
		"paragraph": func(v any) string {
			return firstParagraph(toText(v))
		},
		"duration": func(v any) (string, error) {
			d, err := toDuration(v)
			if err != nil {
				return "", err
			}
			return formatDuration(d), nil
		},
		"time": func(v any) string {
			if t, ok := toTime(v); ok {
				return fullTime(t, r.loc)
			}
			return ""
		},
		"clock": func(v any) string {
			if t, ok := toTime(v); ok {
				return clock(t, r.loc)
			}
			return ""
		},
		"date": func(v any) string {
			if t, ok := toTime(v); ok {
				return t.In(r.loc).Format(time.DateOnly)
			}
			return ""
		},
		"link": func(text, u any) string { return link(toText(text), toText(u)) },
		"url": func(v any) string {
			u, _ := safeURL(toText(v))
			return u
		},
		"plural": plural,
		"join":   func(ss []string, sep string) string { return strings.Join(ss, sep) },
	}
}

type sample struct {
	inc   *hindsight.Incident
	human hindsight.PostmortemFields
	asOf  time.Time
}

// samples are incidents New executes a template on, to catch mistakes
// that parsing does not: one resolved with every field set, one open with
// as little as an open incident has.
func samples() []sample {
	at := func(hhmm string) time.Time {
		t, err := time.Parse("2006-01-02 15:04", "2026-11-20 "+hhmm)
		if err != nil {
			panic(err)
		}
		return t
	}
	ptr := func(t time.Time) *time.Time { return &t }
	secs := func(d time.Duration) *hindsight.Seconds { s := hindsight.Seconds(d.Seconds()); return &s }
	end := at("11:55")
	alert := hindsight.AlertSummary{
		Name: "HighLatency", Fingerprint: "f1", Severity: "critical", Instance: "checkout-1:8080",
		Labels: map[string]string{"alertname": "HighLatency", "service": "checkout"}, Summary: "p99 latency above 2s",
		StartsAt: at("10:42"), EndsAt: &end, ReceivedAt: at("10:43"), RunbookURL: "https://runbooks.example/latency",
	}
	resolved := &hindsight.Incident{
		ID: "i-sample", Title: "HighLatency on checkout", Status: hindsight.StatusResolved, Severity: "critical",
		Service: "checkout", Key: "checkout", StartedAt: at("10:42"), DetectedAt: ptr(at("10:43")), ResolvedAt: &end,
		TimeToDetect: secs(time.Minute), TimeToResolve: secs(73 * time.Minute),
		Alerts: []hindsight.AlertSummary{alert},
		Timeline: []hindsight.TimelineEntry{
			{ID: "e1", Time: at("10:42"), Kind: hindsight.KindAlertFiring, Source: hindsight.SourceAlertmanager, Summary: "p99 latency above 2s", Detection: true, Labels: alert.Labels, URL: "https://prometheus.example/graph"},
			{ID: "e2", Time: at("11:40"), Kind: hindsight.KindDeployRolledBack, Source: hindsight.SourceDeploy, Summary: "Deploy of checkout v2.3.1 rolled back"},
			{ID: "e3", Time: end, Kind: hindsight.KindAlertResolved, Source: hindsight.SourceAlertmanager, Summary: "p99 latency above 2s", Labels: alert.Labels},
		},
		SuspectedChanges: []hindsight.SuspectedChange{{EventID: "d1", Time: at("10:30"), Service: "checkout", Version: "v2.3.1", Status: "succeeded", MinutesBefore: 12, Score: 0.8, Reason: "same service", URL: "https://ci.example/1"}},
		Lifecycle:        []hindsight.LifecycleChange{{Time: at("10:42"), Status: "opened", Reason: "alert fired"}, {Time: end, Status: "resolved", Reason: "all alerts resolved"}},
		Reopened:         1,
	}
	open := &hindsight.Incident{
		ID: "i-open", Status: hindsight.StatusOpen, StartedAt: at("10:42"),
		Alerts:   []hindsight.AlertSummary{{Name: "HighLatency", StartsAt: at("10:42")}},
		Timeline: []hindsight.TimelineEntry{{ID: "e1", Time: at("10:42"), Kind: hindsight.KindAlertFiring}},
	}
	return []sample{
		{inc: resolved, asOf: end, human: hindsight.PostmortemFields{
			Summary: "s", Impact: "i", RootCause: "r", Resolution: "f", ImpactStart: ptr(at("10:35")),
			ActionItems: []hindsight.ActionItem{{Text: "a", Owner: "o", Due: ptr(at("12:00")), Done: true}},
		}},
		{inc: resolved, asOf: end},
		{inc: open, asOf: at("11:06")},
	}
}
