package api

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
)

// This file is the report: time to detect and time to resolve per service
// and severity over a window of incident starts. GET /api/v1/report serves
// it, and `hindsight report` computes it with the same functions from the
// state file when serve is not running.

// DefaultReportSince is how far back a report looks without since.
const DefaultReportSince = 30 * 24 * time.Hour

// Report is time to detect and time to resolve of the incidents that
// opened (status open or resolved; not pending or suppressed) and started
// in [Since, Until], per service and severity.
type Report struct {
	Since  time.Time     `json:"since"`
	Until  time.Time     `json:"until"`
	Groups []ReportGroup `json:"groups"`
}

// ReportGroup is one service and severity of a Report.
type ReportGroup struct {
	Service  string `json:"service"`
	Severity string `json:"severity"`
	// Incidents counts them all, including those whose times are
	// unknown or not yet reached.
	Incidents     int           `json:"incidents"`
	TimeToDetect  DurationStats `json:"time_to_detect"`
	TimeToResolve DurationStats `json:"time_to_resolve"`
}

// DurationStats summarises the known durations of a group, in seconds.
// Median and P90 are nearest-rank percentiles (see NearestRank), nil when
// Count is 0.
type DurationStats struct {
	// Count is how many incidents have the duration: time to detect is
	// unknown for a backfilled incident, time to resolve for one still
	// open.
	Count  int                `json:"count"`
	Median *hindsight.Seconds `json:"median_seconds"`
	P90    *hindsight.Seconds `json:"p90_seconds"`
}

// NearestRank is the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order and not empty: the smallest
// value such that at least p% of the values are no greater than it, that
// is sorted[ceil(p/100 × n) - 1]. It is always one of the values, never
// an interpolation: the median of an even count is the lower middle one,
// and the p90 of fewer than ten values is the largest.
func NearestRank(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p * float64(len(sorted)) / 100)) // p×n first: exact for whole p
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// BuildReport computes the report for [since, until] from incs, leaving
// out the incidents that did not open (pending, suppressed) or did not
// start in the window. Groups are ordered by service, then severity from
// the most severe.
func BuildReport(incs []hindsight.Incident, since, until time.Time) Report {
	type key struct{ service, severity string }
	type acc struct {
		n        int
		ttd, ttr []float64
	}
	groups := map[key]*acc{}
	for i := range incs {
		inc := &incs[i]
		if !inc.Status.Opened() || inc.StartedAt.Before(since) || inc.StartedAt.After(until) {
			continue
		}
		k := key{inc.Service, inc.Severity}
		g := groups[k]
		if g == nil {
			g = &acc{}
			groups[k] = g
		}
		g.n++
		if inc.TimeToDetect != nil {
			g.ttd = append(g.ttd, float64(*inc.TimeToDetect))
		}
		if inc.TimeToResolve != nil {
			g.ttr = append(g.ttr, float64(*inc.TimeToResolve))
		}
	}
	r := Report{Since: since.UTC(), Until: until.UTC(), Groups: make([]ReportGroup, 0, len(groups))}
	for k, g := range groups {
		r.Groups = append(r.Groups, ReportGroup{Service: k.service, Severity: k.severity, Incidents: g.n,
			TimeToDetect: stats(g.ttd), TimeToResolve: stats(g.ttr)})
	}
	slices.SortFunc(r.Groups, func(a, b ReportGroup) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service),
			cmp.Compare(severityOrder(a.Severity), severityOrder(b.Severity)),
			cmp.Compare(a.Severity, b.Severity))
	})
	return r
}

func stats(v []float64) DurationStats {
	if len(v) == 0 {
		return DurationStats{}
	}
	slices.Sort(v)
	median, p90 := hindsight.Seconds(NearestRank(v, 50)), hindsight.Seconds(NearestRank(v, 90))
	return DurationStats{Count: len(v), Median: &median, P90: &p90}
}

// severityOrder puts the most severe first, by the classes the metrics
// use.
func severityOrder(s string) int {
	switch correlate.SeverityClass(s) {
	case "critical":
		return 0
	case "error":
		return 1
	case "warning":
		return 2
	case "info":
		return 3
	case "other":
		return 4
	}
	return 5 // none
}

// ReportSource reads the incidents that started in [from, to], in order
// of start. *boltstore.Store's Neighbours does, without the timelines,
// which the report does not need and which are most of an incident's
// bytes.
type ReportSource interface {
	Neighbours(from, to time.Time) ([]hindsight.Incident, error)
}

// ReadReport reads the incidents that started in [since, until] from src
// and computes their report.
func ReadReport(src ReportSource, since, until time.Time) (Report, error) {
	incs, err := src.Neighbours(since, until)
	if err != nil {
		return Report{}, fmt.Errorf("read incidents started from %s to %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	}
	return BuildReport(incs, since, until), nil
}

// ReportWindow parses a report's since and until (each a duration back
// from now, like 30d, or an RFC 3339 time; see ParseReportTime). An empty
// since is DefaultReportSince ago, an empty until is now. The error says
// which parameter is wrong and why.
func ReportWindow(since, until string, now time.Time) (from, to time.Time, err error) {
	from, to = now.Add(-DefaultReportSince), now
	if since != "" {
		if from, err = ParseReportTime(since, now); err != nil {
			return from, to, fmt.Errorf("since %w", err)
		}
	}
	if until != "" {
		if to, err = ParseReportTime(until, now); err != nil {
			return from, to, fmt.Errorf("until %w", err)
		}
	}
	if from.After(to) {
		return from, to, fmt.Errorf("since (%s) is after until (%s)", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	return from.UTC(), to.UTC(), nil
}

// leadingDays is a count of days or weeks, and maybe a Go duration after
// it: 30d, 2w, 1d12h.
var leadingDays = regexp.MustCompile(`^([0-9]+)([dw])(.*)$`)

// ParseReportTime parses s as a time: a positive duration back from now
// (a Go duration like 36h or 90m, or days and weeks: 30d, 2w, 1d12h), an
// RFC 3339 time (2026-11-01T00:00:00Z), or a date (2026-11-01, midnight
// UTC).
func ParseReportTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, ok := parseDays(s)
	if !ok {
		hint := ""
		if strings.Contains(s, " ") {
			hint = " (in a URL, write the + of a time zone offset as %2B)"
		}
		return time.Time{}, fmt.Errorf("%q: want a duration back from now like 30d, 2w, 12h or 90m, or an RFC 3339 time like 2026-11-01T00:00:00Z%s", s, hint)
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("%q: want a positive duration back from now", s)
	}
	return now.Add(-d).UTC(), nil
}

// parseDays parses a Go duration that may start with days or weeks.
func parseDays(s string) (time.Duration, bool) {
	m := leadingDays.FindStringSubmatch(s)
	if m == nil {
		d, err := time.ParseDuration(s)
		return d, err == nil
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := 24 * time.Hour
	if m[2] == "w" {
		unit *= 7
	}
	if err != nil || n > math.MaxInt64/int64(unit)/2 {
		return 0, false // beyond ±146 years: not a window anyone means
	}
	d := time.Duration(n) * unit
	if m[3] != "" {
		rest, err := time.ParseDuration(m[3])
		if err != nil || rest < 0 || rest > math.MaxInt64-d {
			return 0, false
		}
		d += rest
	}
	return d, true
}

func (a *server) report(w http.ResponseWriter, r *http.Request) {
	src := a.reportSource()
	if src == nil {
		Error(w, http.StatusNotImplemented, "this Hindsight cannot read incidents by start time, so it serves no report")
		return
	}
	q := r.URL.Query()
	since, until, err := ReportWindow(q.Get("since"), q.Get("until"), a.o.Now())
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	rep, err := ReadReport(src, since, until)
	if err != nil {
		a.internal(w, "report", err)
		return
	}
	JSON(w, http.StatusOK, rep)
}

// reportSource is what the report reads: the store behind Enriched
// (context is not needed), or Incidents itself if it can.
func (a *server) reportSource() ReportSource {
	switch s := a.o.Incidents.(type) {
	case Enriched:
		if s.Store != nil {
			return s.Store
		}
	case *Enriched:
		if s != nil && s.Store != nil {
			return s.Store
		}
	case ReportSource:
		return s
	}
	return nil
}
