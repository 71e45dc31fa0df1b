package draft_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/draft"
)

// bigIncident is a resolved storm on checkout with entries timeline
// entries: alert occurrences on many pods, each firing and resolving
// (some flapping), a deploy and rollback every few hundred entries and
// a human note now and then, as the correlator would store it.
func bigIncident(entries int) *hindsight.Incident {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	names := []struct{ name, severity, summary string }{
		{"HighLatency", "critical", "p99 latency above 2s on checkout"},
		{"HighErrorRate", "critical", "5xx ratio above 5% on checkout"},
		{"PodCrashLooping", "warning", "pod of checkout restarting"},
		{"KubePodNotReady", "warning", "pod of checkout not ready for 15m"},
	}
	inc := &hindsight.Incident{
		ID: "inc-4f1c2a9e7b3d5a10", Title: "HighLatency on checkout", Status: hindsight.StatusResolved, Severity: "critical",
		Service: "checkout", Key: "checkout", KeyLabels: map[string]string{"service": "checkout"}, StartedAt: start,
		Anchor: "0000000000000000@" + start.Format(time.RFC3339Nano),
	}
	t := start
	var last time.Time
	for i := 0; len(inc.Timeline) < entries; i++ {
		t = start.Add(time.Duration(i) * 2 * time.Second)
		switch {
		case i%500 == 250:
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{
				ID: fmt.Sprintf("d-%032x", i), Time: t, Kind: hindsight.KindDeploySucceeded, Source: hindsight.SourceDeploy,
				Summary: fmt.Sprintf("Deploy of checkout v2.3.%d to prod succeeded (by alice)", i), Reason: "deploy of checkout",
				Labels: map[string]string{"service": "checkout", "environment": "prod"}, URL: "https://ci.example.com/checkout/deploys/" + fmt.Sprint(i),
			})
			continue
		case i%500 == 400:
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{
				ID: fmt.Sprintf("d-%032x", i), Time: t, Kind: hindsight.KindDeployRolledBack, Source: hindsight.SourceDeploy,
				Summary: "Deploy of checkout to prod rolled back (by bob)", Reason: "deploy of checkout",
				Labels: map[string]string{"service": "checkout", "environment": "prod"},
			})
			continue
		case i%1000 == 700:
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{
				ID: fmt.Sprintf("n-%032x", i), Time: t, Kind: hindsight.KindNote, Source: hindsight.SourceNote,
				Summary: "Still seeing `timeouts` on *some* pods; scaling the payment client pool.", Reason: "note on " + inc.ID,
			})
			continue
		}
		k := names[i%len(names)]
		pod := fmt.Sprintf("checkout-7d9f8c6b5-%05x", i/3) // a pod flaps a few times
		labels := map[string]string{"alertname": k.name, "severity": k.severity, "service": "checkout", "instance": pod + ":8080", "pod": pod, "env": "prod"}
		fp := fmt.Sprintf("%016x", i/3*7919+i%len(names))
		end := t.Add(90 * time.Second)
		inc.Alerts = append(inc.Alerts, hindsight.AlertSummary{
			Name: k.name, Fingerprint: fp, Severity: k.severity, Instance: pod + ":8080", Labels: labels, Summary: k.summary,
			StartsAt: t, EndsAt: &end, ReceivedAt: t.Add(30 * time.Second),
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=x", RunbookURL: "https://runbooks.example.com/checkout/" + k.name,
		})
		for _, e := range []struct {
			kind hindsight.Kind
			at   time.Time
			st   string
		}{{hindsight.KindAlertFiring, t, "firing"}, {hindsight.KindAlertResolved, end, "resolved"}} {
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{
				ID: hindsight.AlertEventID(fp, t, e.st), Time: e.at, Kind: e.kind, Source: hindsight.SourceAlertmanager,
				Summary: k.summary, Reason: `key label service="checkout"`, Labels: labels, URL: "http://prometheus.example:9090/graph?g0.expr=x",
				Detection: i == 0 && e.kind == hindsight.KindAlertFiring,
			})
		}
		last = end
	}
	inc.Timeline = inc.Timeline[:entries]
	detected, ttd, ttr := start.Add(30*time.Second), hindsight.Seconds(30), hindsight.Seconds(last.Sub(start).Seconds())
	inc.DetectedAt, inc.ResolvedAt, inc.TimeToDetect, inc.TimeToResolve = &detected, &last, &ttd, &ttr
	inc.Lifecycle = []hindsight.LifecycleChange{
		{Time: start, Status: "opened", Reason: "HighLatency started firing (service=checkout)"},
		{Time: last, Status: "resolved", Reason: "every alert resolved"},
	}
	inc.SuspectedChanges = []hindsight.SuspectedChange{{
		EventID: "d-0", Time: start.Add(-12 * time.Minute), Service: "checkout", Environment: "prod", Version: "v2.3.1",
		Status: "succeeded", Actor: "alice", MinutesBefore: 12, Score: 0.68, Reason: "same service checkout; 12m before the first alert",
	}}
	return inc
}

// BenchmarkRender is the postmortem draft of one incident, by timeline
// entries (the sub-benchmark name), with the built-in template.
func BenchmarkRender(b *testing.B) {
	r, err := draft.New(draft.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1_000, 10_000} {
		inc := bigIncident(n)
		if len(inc.Timeline) != n {
			b.Fatalf("built %d entries, want %d", len(inc.Timeline), n)
		}
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Render(io.Discard, inc, hindsight.PostmortemFields{}, *inc.ResolvedAt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
