package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run, printed as a table or (--json) as JSON.
type Report struct {
	Server      string  `json:"server"`
	Seed        uint64  `json:"seed"`
	Connections int     `json:"connections"`
	Rate        float64 `json:"target_rate"` // notifications/s; 0: as fast as possible
	// LoadSeconds runs from the first request to the last answer.
	LoadSeconds float64 `json:"load_seconds"`
	// SettleSeconds runs from the last answer to the listing that had
	// every acknowledged alert event on exactly one entry (Settled), or
	// to the --settle limit.
	SettleSeconds float64 `json:"settle_seconds"`
	Settled       bool    `json:"settled"`

	Sent struct {
		Notifications int `json:"notifications"`
		Fresh         int `json:"fresh"`
		Repeats       int `json:"repeats"`
		Late          int `json:"late"`
		Deploys       int `json:"deploys"`
	} `json:"sent"`
	// Answers counts answers by HTTP status; "transport" is a request
	// that got none (connection refused or reset, timeout).
	Answers map[string]int `json:"answers"`
	Errors  int            `json:"errors"`

	Throughput struct {
		NotificationsPerSecond float64 `json:"notifications_per_second"`
		AlertsPerSecond        float64 `json:"alerts_per_second"`
		NewAlertsPerSecond     float64 `json:"new_alerts_per_second"`
		DeploysPerSecond       float64 `json:"deploys_per_second"`
	} `json:"throughput"`

	Events struct {
		AlertsListed int `json:"alerts_listed"` // in 2xx answers, repeats included
		NewAlerts    int `json:"new_alerts"`    // listed minus duplicates
		Deploys      int `json:"deploys"`
	} `json:"events"`
	Duplicates struct {
		OnRepeats     int `json:"on_repeats"`
		WantOnRepeats int `json:"want_on_repeats"`
		OnFresh       int `json:"on_fresh"`
	} `json:"duplicates"`
	IDMismatches       int      `json:"id_mismatches"`
	IDMismatchExamples []string `json:"id_mismatch_examples,omitempty"`
	Rejected           int      `json:"rejected"`

	ExactlyOnce struct {
		Checked       int      `json:"checked"` // acknowledged alert event IDs
		Missing       int      `json:"missing"`
		Duplicated    int      `json:"duplicated"`
		MissingIDs    []string `json:"missing_ids,omitempty"`
		DuplicatedIDs []string `json:"duplicated_ids,omitempty"`
	} `json:"exactly_once"`
	Deploys struct {
		Acked      int `json:"acked"`
		OnTimeline int `json:"on_timeline"`
		Suspected  int `json:"suspected"`
	} `json:"deploys"`

	Latency struct {
		WebhookAlerts     Percentiles `json:"webhook_alertmanager"`
		WebhookDeploys    Percentiles `json:"webhook_deploy"`
		VisibilityAlerts  Percentiles `json:"visibility_alert"`
		VisibilityDeploys Percentiles `json:"visibility_deploy"`
		// VisibilityProbed times sampled alert events one by one (see
		// Probes): from the 2xx answer to the first GET
		// /api/v1/events/{id} that names the incident holding it.
		VisibilityProbed Percentiles `json:"visibility_alert_probed"`
	} `json:"latency"`
	Probes struct {
		RatePerSecond float64  `json:"rate_per_second"`
		IntervalMs    float64  `json:"interval_ms"`
		Timed         int      `json:"timed"`
		Dropped       int      `json:"dropped"` // samples due while every prober was busy
		Unseen        int      `json:"unseen"`  // never on a timeline within the settle time
		UnseenIDs     []string `json:"unseen_ids,omitempty"`
	} `json:"probes"`
	Poll struct {
		IntervalMs float64     `json:"interval_ms"`
		Listings   Percentiles `json:"listings"`
		Errors     int         `json:"errors"`
		LastError  string      `json:"last_error,omitempty"`
	} `json:"poll"`
	RSS RSS `json:"rss"`

	// Failures say why the run failed; none: it passed.
	Failures []string `json:"failures"`
}

// Percentiles summarise durations, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// percentiles sorts ds and summarises them.
func percentiles(ds []time.Duration) Percentiles {
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p := Percentiles{N: len(ds)}
	if len(ds) > 0 {
		p.P50, p.P90, p.P99, p.Max = ms(percentile(ds, 50)), ms(percentile(ds, 90)), ms(percentile(ds, 99)), ms(ds[len(ds)-1])
	}
	return p
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest
// value that at least p% of the values are at or below.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// exactlyOnce checks each acknowledged alert event against the timeline
// entry counts by ID: missing (no entry) and duplicated (more than one).
func exactlyOnce(acked map[string]ack, counts map[string]int) (checked int, missing, duplicated []string) {
	for id, a := range acked {
		if a.deploy {
			continue
		}
		checked++
		switch n := counts[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			duplicated = append(duplicated, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	sort.Strings(missing)
	sort.Strings(duplicated)
	return checked, missing, duplicated
}

func (l *loader) report(start, loadEnd, settleEnd time.Time, settled bool) *Report {
	t := l.tr
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &Report{Server: l.base, Seed: l.o.gen.Seed, Connections: l.o.connections, Rate: l.o.rate, Settled: settled, Answers: maps.Clone(t.answers)}
	end := loadEnd
	if !t.lastAnswer.IsZero() {
		end = t.lastAnswer
	}
	load := end.Sub(start).Seconds()
	r.LoadSeconds = load
	r.SettleSeconds = settleEnd.Sub(end).Seconds()

	r.Sent.Fresh, r.Sent.Repeats, r.Sent.Late, r.Sent.Deploys = t.sentFresh, t.sentRep, t.sentLate, t.sentDeploy
	r.Sent.Notifications = t.sentFresh + t.sentRep
	for s, n := range t.answers {
		if !strings.HasPrefix(s, "2") {
			r.Errors += n
		}
	}
	if load > 0 {
		r.Throughput.NotificationsPerSecond = float64(len(t.webhookAlerts)) / load
		r.Throughput.AlertsPerSecond = float64(t.alertEvents) / load
		r.Throughput.NewAlertsPerSecond = float64(t.newAlertEvents) / load
		r.Throughput.DeploysPerSecond = float64(len(t.webhookDeploys)) / load
	}
	r.Events.AlertsListed, r.Events.NewAlerts, r.Events.Deploys = t.alertEvents, t.newAlertEvents, t.deployEvents
	r.Duplicates.OnRepeats, r.Duplicates.WantOnRepeats, r.Duplicates.OnFresh = t.repeatGot, t.repeatWant, t.freshDups
	r.IDMismatches, r.IDMismatchExamples, r.Rejected = t.mismatchN, t.mismatches, t.rejected

	checked, missing, duplicated := exactlyOnce(t.acked, t.counts)
	r.ExactlyOnce.Checked, r.ExactlyOnce.Missing, r.ExactlyOnce.Duplicated = checked, len(missing), len(duplicated)
	r.ExactlyOnce.MissingIDs = missing[:min(len(missing), maxExamples)]
	r.ExactlyOnce.DuplicatedIDs = duplicated[:min(len(duplicated), maxExamples)]

	var visAlerts, visDeploys []time.Duration
	for id, a := range t.acked {
		seen, ok := t.seen[id]
		if a.deploy {
			r.Deploys.Acked++
			if t.counts[id] > 0 {
				r.Deploys.OnTimeline++
			}
			if t.suspected[id] {
				r.Deploys.Suspected++
			}
		}
		if !ok {
			continue
		}
		// The poller can see an entry before the worker has read the
		// answer that acknowledged it.
		d := max(0, seen.Sub(a.at))
		if a.deploy {
			visDeploys = append(visDeploys, d)
		} else {
			visAlerts = append(visAlerts, d)
		}
	}
	r.Latency.WebhookAlerts = percentiles(slices.Clone(t.webhookAlerts))
	r.Latency.WebhookDeploys = percentiles(slices.Clone(t.webhookDeploys))
	r.Latency.VisibilityAlerts = percentiles(visAlerts)
	r.Latency.VisibilityDeploys = percentiles(visDeploys)
	r.Latency.VisibilityProbed = percentiles(slices.Clone(t.probes))
	r.Probes.RatePerSecond, r.Probes.IntervalMs = l.o.probeRate, float64(l.o.probeInterval)/float64(time.Millisecond)
	r.Probes.Timed, r.Probes.Dropped, r.Probes.Unseen = len(t.probes), t.probesDropped, len(t.probesUnseen)
	r.Probes.UnseenIDs = t.probesUnseen[:min(len(t.probesUnseen), maxExamples)]
	r.Poll.IntervalMs = float64(l.o.pollInterval) / float64(time.Millisecond)
	r.Poll.Listings = percentiles(slices.Clone(t.pollDur))
	r.Poll.Errors, r.Poll.LastError = t.pollErrs, t.lastErr

	if len(t.webhookAlerts)+len(t.webhookDeploys) == 0 {
		r.Failures = append(r.Failures, "no request got a 2xx answer")
	}
	if r.ExactlyOnce.Missing > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d acknowledged alert events on no timeline entry", r.ExactlyOnce.Missing))
	}
	if r.ExactlyOnce.Duplicated > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d acknowledged alert events on more than one timeline entry", r.ExactlyOnce.Duplicated))
	}
	if t.counts == nil && checked > 0 {
		r.Failures = append(r.Failures, "no complete listing of the incidents: "+t.lastErr)
	}
	if r.IDMismatches > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d answers did not list the event IDs computed here", r.IDMismatches))
	}
	// A request's events travel in one message, so the answer counts as
	// duplicates only the events of a notification the stream already
	// had whole; the repeats of single events collapse in the correlator,
	// which the exactly-once check sees. More than were repeated is wrong.
	if r.Duplicates.OnRepeats > r.Duplicates.WantOnRepeats {
		r.Failures = append(r.Failures, fmt.Sprintf("repeats came back with %d duplicates, more than the %d repeated events", r.Duplicates.OnRepeats, r.Duplicates.WantOnRepeats))
	}
	if r.Duplicates.OnFresh > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d new events came back as duplicates", r.Duplicates.OnFresh))
	}
	if r.Rejected > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d alerts rejected", r.Rejected))
	}
	if r.Failures == nil {
		r.Failures = []string{}
	}
	return r
}

// writeJSON prints r as indented JSON.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints r as two aligned tables: the run, then latencies.
func (r *Report) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	rate := "as fast as possible"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%g notifications/s", r.Rate)
	}
	row("server", "%s, %d connections, %s, seed %d", r.Server, r.Connections, rate, r.Seed)
	if r.Settled {
		row("time", "%.1fs of load, then %.1fs until every acknowledged alert event was on exactly one entry", r.LoadSeconds, r.SettleSeconds)
	} else {
		row("time", "%.1fs of load, then waited %.1fs (--settle) without every acknowledged alert event on exactly one entry", r.LoadSeconds, r.SettleSeconds)
	}
	row("sent", "%d notifications (%d fresh, %d of them late; %d repeats), %d deploys",
		r.Sent.Notifications, r.Sent.Fresh, r.Sent.Late, r.Sent.Repeats, r.Sent.Deploys)
	row("answers", "%s", answersLine(r.Answers))
	row("throughput", "%.1f notifications/s, %.1f alerts/s (%.1f new), %.1f deploys/s",
		r.Throughput.NotificationsPerSecond, r.Throughput.AlertsPerSecond, r.Throughput.NewAlertsPerSecond, r.Throughput.DeploysPerSecond)
	if r.Rate > 0 && r.Throughput.NotificationsPerSecond < 0.9*r.Rate {
		row("", "below the target %g/s: every connection was waiting for answers (raise --connections, or the server is the limit)", r.Rate)
	}
	row("duplicates", "%d on repeats (at most %d), %d on fresh notifications (want 0)", r.Duplicates.OnRepeats, r.Duplicates.WantOnRepeats, r.Duplicates.OnFresh)
	row("event IDs", "%d answers differ from the IDs computed here, %d alerts rejected", r.IDMismatches, r.Rejected)
	row("exactly once", "%d acknowledged alert events: %d missing, %d duplicated", r.ExactlyOnce.Checked, r.ExactlyOnce.Missing, r.ExactlyOnce.Duplicated)
	row("deploys", "%d acknowledged: %d on a timeline, %d suspected changes (the rest are near no incident)", r.Deploys.Acked, r.Deploys.OnTimeline, r.Deploys.Suspected)
	switch {
	case r.RSS.Samples > 0:
		row("server RSS", "peak %s (VmHWM, whole life), max sampled %s, max RssAnon (not a mapped file) %s, %s at start; pid %d",
			mib(r.RSS.PeakBytes), mib(r.RSS.MaxSampledBytes), mib(r.RSS.MaxAnonBytes), mib(r.RSS.StartBytes), r.RSS.PID)
	default:
		row("server RSS", "%s", r.RSS.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	// Names left-aligned (padded to one width), numbers right-aligned.
	rows := []struct {
		name string
		p    Percentiles
	}{
		{"webhook alertmanager", r.Latency.WebhookAlerts},
		{"webhook deploy", r.Latency.WebhookDeploys},
		{"visibility alert", r.Latency.VisibilityAlerts},
		{"visibility deploy", r.Latency.VisibilityDeploys},
		{"visibility alert, probed", r.Latency.VisibilityProbed},
		{"incident listing", r.Poll.Listings},
	}
	width := len("latency (ms)")
	for _, l := range rows {
		width = max(width, len(l.name))
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tn\tp50\tp90\tp99\tmax\t\n", width, "latency (ms)")
	for _, l := range rows {
		fmt.Fprintf(tw, "%-*s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", width, l.name, l.p.N, l.p.P50, l.p.P90, l.p.P99, l.p.Max)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nVisibility runs from the 2xx answer to the first incident listing that shows the event on a timeline.\n"+
		"A listing starts every %.0fms, or right after the previous one when that took longer (here p50 %.0fms, max %.0fms):\n"+
		"visibility is an upper bound at that resolution, and the listings are load on the server too.\n",
		r.Poll.IntervalMs, r.Poll.Listings.P50, r.Poll.Listings.Max)
	if r.Probes.RatePerSecond > 0 {
		fmt.Fprintf(w, "Probed: %.0f alert events a second, each asked for by ID every %.0fms from its 2xx answer until an incident holds it\n"+
			"(%d timed, %d skipped while every prober was busy, %d never seen).\n",
			r.Probes.RatePerSecond, r.Probes.IntervalMs, r.Probes.Timed, r.Probes.Dropped, r.Probes.Unseen)
	}
	if r.Poll.Errors > 0 {
		fmt.Fprintf(w, "%d listings failed; the last: %s\n", r.Poll.Errors, r.Poll.LastError)
	}
	for _, m := range r.IDMismatchExamples {
		fmt.Fprintf(w, "mismatch: %s\n", m)
	}
	for _, id := range r.ExactlyOnce.MissingIDs {
		fmt.Fprintf(w, "missing: %s\n", id)
	}
	for _, id := range r.ExactlyOnce.DuplicatedIDs {
		fmt.Fprintf(w, "duplicated: %s\n", id)
	}
	if len(r.Failures) == 0 {
		fmt.Fprintln(w, "PASS")
	} else {
		fmt.Fprintf(w, "FAIL: %s\n", strings.Join(r.Failures, "; "))
	}
	return nil
}

func answersLine(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
