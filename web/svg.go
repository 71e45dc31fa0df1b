package web

import (
	"fmt"
	"math"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// picture is the timeline drawn as an SVG, computed here so that the
// template only places what is computed: a time axis, a lane per alert
// occurrence with a bar from its start to its end (to now while it
// fires), a lane of deploys and one of notes, and lines at the incident's
// start, corrected impact start and resolution.
type picture struct {
	Width, Height int
	LabelWidth    int
	AxisY         int
	Ticks         []tick
	Lanes         []lane
	Marks         []mark
	Lines         []line
	// More counts the alert occurrences left out (maxLanes).
	More int
}

type tick struct {
	X     float64
	Label string
}

type lane struct {
	Y     int
	Label string
	Bar   *bar
}

type bar struct {
	X, W   float64
	Y      int
	Firing bool
	Title  string
	Href   string
}

type mark struct {
	X, Y    float64
	Kind    string // deploy or note
	Suspect bool   // the top suspected change
	Hidden  bool
	Title   string
	Label   string
	Href    string
}

// Points is a deploy's diamond.
func (m mark) Points() string {
	r := 5.0
	if m.Suspect {
		r = 7
	}
	return fmt.Sprintf("%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f", m.X, m.Y-r, m.X+r, m.Y, m.X, m.Y+r, m.X-r, m.Y)
}

type line struct {
	X     float64
	Label string
	Class string
}

const (
	plotWidth  = 780
	labelWidth = 190
	laneHeight = 20
	maxLanes   = 24
)

// tickSteps are the axis steps to choose from: the smallest that gives
// at most eight ticks.
var tickSteps = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

func draw(inc *hindsight.Incident, impact time.Time, suspect string, now time.Time) picture {
	lo, hi := span(inc, impact, now)
	x := func(t time.Time) float64 {
		v := float64(labelWidth) + float64(t.Sub(lo))/float64(hi.Sub(lo))*plotWidth
		return math.Round(v*10) / 10
	}
	p := picture{Width: labelWidth + plotWidth + 20, LabelWidth: labelWidth}
	y := 8
	for i, a := range inc.Alerts {
		if i == maxLanes {
			p.More = len(inc.Alerts) - maxLanes
			break
		}
		end, firing := now, a.EndsAt == nil
		if !firing {
			end = *a.EndsAt
		}
		label := a.Name
		if a.Instance != "" {
			label += " " + a.Instance
		}
		title := fmt.Sprintf("%s: %s, from %s", label, a.Summary, a.StartsAt.UTC().Format("15:04:05"))
		if firing {
			title += ", still firing"
		} else {
			title += " to " + end.UTC().Format("15:04:05")
		}
		b := &bar{X: x(a.StartsAt), Y: y + 4, Firing: firing, Title: title, Href: safeURL(a.GeneratorURL)}
		b.W = max(x(end)-b.X, 2)
		p.Lanes = append(p.Lanes, lane{Y: y, Label: clipLabel(label), Bar: b})
		y += laneHeight
	}
	deployY, noteY := y, y+laneHeight
	p.Lanes = append(p.Lanes, lane{Y: deployY, Label: "deploys"}, lane{Y: noteY, Label: "notes"})
	onTimeline := map[string]bool{}
	for _, e := range inc.Timeline {
		onTimeline[e.ID] = true
		m := mark{X: x(e.Time), Suspect: e.ID == suspect, Hidden: e.Hidden, Href: safeURL(e.URL),
			Title: e.Time.UTC().Format("15:04:05") + " " + e.Summary}
		switch {
		case e.Kind.IsDeploy():
			m.Kind, m.Y = "deploy", float64(deployY+laneHeight/2)
		case e.Kind == hindsight.KindNote:
			m.Kind, m.Y = "note", float64(noteY+laneHeight/2)
		default:
			continue
		}
		p.Marks = append(p.Marks, m)
	}
	for _, c := range inc.SuspectedChanges {
		if !onTimeline[c.EventID] {
			p.Marks = append(p.Marks, mark{X: x(c.Time), Y: float64(deployY + laneHeight/2), Kind: "deploy", Suspect: c.EventID == suspect,
				Href: safeURL(c.URL), Title: fmt.Sprintf("%s deploy of %s %s (suspected: %s)", c.Time.UTC().Format("15:04:05"), c.Service, c.Version, c.Reason)})
		}
	}
	for i := range p.Marks {
		if m := &p.Marks[i]; m.Suspect {
			m.Label, m.Title = "top suspect", m.Title+" — the top suspected change, not a confirmed cause"
		}
	}
	p.AxisY = noteY + laneHeight + 6
	p.Height = p.AxisY + 22
	p.Lines = append(p.Lines, line{X: x(inc.StartedAt), Label: "start", Class: "start"})
	if !impact.Equal(inc.StartedAt) {
		p.Lines = append(p.Lines, line{X: x(impact), Label: "impact", Class: "impact"})
	}
	if inc.ResolvedAt != nil {
		p.Lines = append(p.Lines, line{X: x(*inc.ResolvedAt), Label: "resolved", Class: "resolved"})
	} else {
		p.Lines = append(p.Lines, line{X: x(now), Label: "now", Class: "now"})
	}
	p.Ticks = ticks(lo, hi, x)
	return p
}

// span is the time range the picture shows: everything on it, and now
// while the incident is open, with a little room either side.
func span(inc *hindsight.Incident, impact, now time.Time) (lo, hi time.Time) {
	lo, hi = inc.StartedAt, inc.StartedAt
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	see(impact)
	if inc.ResolvedAt != nil {
		see(*inc.ResolvedAt)
	} else {
		see(now)
	}
	for _, e := range inc.Timeline {
		see(e.Time)
	}
	for _, c := range inc.SuspectedChanges {
		see(c.Time)
	}
	for _, a := range inc.Alerts {
		see(a.StartsAt)
		if a.EndsAt != nil {
			see(*a.EndsAt)
		}
	}
	if hi.Sub(lo) < time.Minute {
		hi = lo.Add(time.Minute)
	}
	pad := hi.Sub(lo) / 40
	return lo.Add(-pad), hi.Add(pad)
}

func ticks(lo, hi time.Time, x func(time.Time) float64) []tick {
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if hi.Sub(lo)/s <= 8 {
			step = s
			break
		}
	}
	layout := "15:04"
	if hi.Sub(lo) > 24*time.Hour {
		layout = "01-02 15:04"
	}
	var out []tick
	for t := lo.Truncate(step).Add(step); !t.After(hi); t = t.Add(step) {
		out = append(out, tick{X: x(t), Label: t.UTC().Format(layout)})
	}
	return out
}

func clipLabel(s string) string {
	if r := []rune(s); len(r) > 28 {
		return string(r[:27]) + "…"
	}
	return s
}
