package draft

import (
	"fmt"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// formatDuration writes d the way an SRE would (see
// hindsight.FormatDuration).
func formatDuration(d time.Duration) string { return hindsight.FormatDuration(d) }

// clock formats t as HH:MM in loc.
func clock(t time.Time, loc *time.Location) string { return t.In(loc).Format("15:04") }

// fullTime formats t as "2026-11-20 10:42 UTC" in loc.
func fullTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// toTime accepts what templates hold: time.Time or *time.Time (nil or zero
// is no time).
func toTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil {
			return time.Time{}, false
		}
		return *t, !t.IsZero()
	}
	return time.Time{}, false
}

// toDuration accepts time.Duration, hindsight.Seconds (and pointers to
// either), and numbers of seconds.
func toDuration(v any) (time.Duration, error) {
	switch d := v.(type) {
	case time.Duration:
		return d, nil
	case *time.Duration:
		if d != nil {
			return *d, nil
		}
	case hindsight.Seconds:
		return d.Duration(), nil
	case *hindsight.Seconds:
		if d != nil {
			return d.Duration(), nil
		}
	case float64:
		return hindsight.Seconds(d).Duration(), nil
	case int:
		return time.Duration(d) * time.Second, nil
	default:
		return 0, fmt.Errorf("duration: cannot format %T", v)
	}
	return 0, fmt.Errorf("duration: nil %T", v)
}

// toText turns what a template passes to md into a string.
func toText(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	case fmt.Stringer:
		return s.String()
	}
	return fmt.Sprint(v)
}

// plural writes "1 instance", "3 instances".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// firstParagraph returns the text of s up to its first blank line.
func firstParagraph(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if i := strings.Index(s, "\n\n"); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// prose places human-written Markdown after a bold label such as
// "**Impact:**": one line follows the label on the same line; longer text
// starts a paragraph of its own, so that its lists and paragraphs render.
func prose(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if strings.Contains(s, "\n") {
		return "\n\n" + s
	}
	return " " + s
}
