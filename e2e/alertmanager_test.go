package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// Debian's Alertmanager notifies Hindsight over HTTP with a bearer token.
// Two alerts of one service fire, Alertmanager repeats them (repeat
// interval 4s), then they resolve: one incident, resolved, critical, with
// two firing and two resolved entries however often the repeats came. An
// alert of another service opens a second incident.
func TestRealAlertmanager(t *testing.T) {
	t.Parallel()
	bin := program(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	h := bootHindsight(t)
	am := startAlertmanager(t, bin, h)

	// The alerts started a little before Alertmanager heard of them, as
	// when Prometheus evaluates a rule with `for:`. Milliseconds, as
	// Prometheus sends them.
	now := time.Now().UTC().Truncate(time.Millisecond)
	checkout := []amAlert{
		{
			Labels:       map[string]string{"alertname": "HighLatency", "service": "checkout", "severity": "critical", "instance": "checkout-7d9f:8080"},
			Annotations:  map[string]string{"summary": "p99 latency above 2s on checkout"},
			StartsAt:     now.Add(-30 * time.Second),
			GeneratorURL: "http://prometheus.invalid/graph?g0.expr=latency",
		},
		{
			Labels:       map[string]string{"alertname": "HighErrorRate", "service": "checkout", "severity": "warning", "instance": "checkout-7d9f:8080"},
			Annotations:  map[string]string{"summary": "5% of checkout requests fail"},
			StartsAt:     now.Add(-20 * time.Second),
			GeneratorURL: "http://prometheus.invalid/graph?g0.expr=errors",
		},
	}
	earliest := checkout[0].StartsAt

	// Keep the alerts firing as Prometheus does: re-post them every
	// second with an endsAt 15s ahead. Without the re-posts Alertmanager
	// would reach that endsAt and resolve them by itself.
	stopFiring := keepFiring(t, am, checkout)

	// Wait for the first notification and at least two repeats: 2 events
	// each, the repeats all duplicates.
	received := `hindsight_events_received_total{source="alertmanager"}`
	dedup := `hindsight_events_deduplicated_total{stage="ingest"}`
	eventually(t, 45*time.Second, "Alertmanager's first notification and two repeats", func() (bool, string) {
		m := h.metrics(t)
		r, _ := metric(m, received)
		d, _ := metric(m, dedup)
		return r >= 6 && d >= 4, "received " + ftoa(r) + ", duplicates " + ftoa(d)
	})
	incs := h.incidents(t)
	if len(incs) != 1 || incs[0].Status != hindsight.StatusOpen || countKinds(incs[0])[hindsight.KindAlertFiring] != 2 || len(incs[0].Timeline) != 2 {
		t.Fatalf("after the repeats: %s; want one open incident with 2 alert.firing entries", describe(incs))
	}

	// Resolve both, as Prometheus does when the rule stops firing.
	stopFiring()
	resolvedAt := time.Now().UTC().Truncate(time.Millisecond)
	resolved := make([]amAlert, len(checkout))
	for i, a := range checkout {
		a.EndsAt = resolvedAt
		resolved[i] = a
	}
	if err := am.post(resolved); err != nil {
		t.Fatal(err)
	}
	var inc hindsight.Incident
	eventually(t, 20*time.Second, "the checkout incident to resolve", func() (bool, string) {
		incs := h.incidents(t)
		if len(incs) == 1 {
			inc = incs[0]
		}
		return len(incs) == 1 && inc.Status == hindsight.StatusResolved, describe(incs)
	})

	t.Logf("incident %s: started %s, detected %v (time to detect %vs), resolved %v (time to resolve %vs)",
		inc.ID, inc.StartedAt, inc.DetectedAt, deref(inc.TimeToDetect), inc.ResolvedAt, deref(inc.TimeToResolve))
	n := countKinds(inc)
	if inc.Service != "checkout" || inc.Severity != "critical" || len(inc.Timeline) != 4 || n[hindsight.KindAlertFiring] != 2 || n[hindsight.KindAlertResolved] != 2 {
		t.Errorf("incident: %s; want checkout, critical, 2 alert.firing + 2 alert.resolved", describe([]hindsight.Incident{inc}))
	}
	names := map[string]int{}
	for _, e := range inc.Timeline {
		names[e.Labels["alertname"]+" "+string(e.Kind)]++
	}
	for _, a := range []string{"HighLatency", "HighErrorRate"} {
		for _, k := range []hindsight.Kind{hindsight.KindAlertFiring, hindsight.KindAlertResolved} {
			if names[a+" "+string(k)] != 1 {
				t.Errorf("timeline has %d %s entries for %s, want 1", names[a+" "+string(k)], k, a)
			}
		}
	}
	if !inc.StartedAt.Truncate(time.Second).Equal(earliest.Truncate(time.Second)) {
		t.Errorf("started_at = %s, want the earliest startsAt sent, %s", inc.StartedAt, earliest)
	}
	if inc.ResolvedAt == nil || !inc.ResolvedAt.Truncate(time.Second).Equal(resolvedAt.Truncate(time.Second)) {
		t.Errorf("resolved_at = %v, want the endsAt sent, %s", inc.ResolvedAt, resolvedAt)
	}
	if inc.DetectedAt == nil || inc.DetectedAt.Before(now.Add(-time.Second)) || inc.DetectedAt.After(resolvedAt) {
		t.Errorf("detected_at = %v, want the time the first notification arrived (after %s, before %s)", inc.DetectedAt, now, resolvedAt)
	}
	if inc.TimeToDetect == nil || inc.DetectedAt == nil || absDiff(inc.TimeToDetect.Duration(), inc.DetectedAt.Sub(inc.StartedAt)) > time.Millisecond {
		t.Errorf("time_to_detect = %v, want detected_at - started_at (detected_at %v, started_at %s)", inc.TimeToDetect, inc.DetectedAt, inc.StartedAt)
	}
	if inc.TimeToResolve == nil {
		t.Errorf("time_to_resolve unknown for a resolved incident")
	}
	// The durations are observed once the correlator's batch is
	// committed, a moment after the API shows the incident resolved.
	var m string
	eventually(t, 15*time.Second, "the durations in /metrics", func() (bool, string) {
		m = h.metrics(t)
		var wrong []string
		for series, want := range map[string]float64{
			`hindsight_time_to_detect_seconds_count{severity="critical"}`:  1,
			`hindsight_time_to_resolve_seconds_count{severity="critical"}`: 1,
			`hindsight_incidents_open`:                                     0,
		} {
			if got, ok := metric(m, series); !ok || got != want {
				wrong = append(wrong, fmt.Sprintf("%s = %v (present %v), want %v", series, got, ok, want))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "; ")
	})
	if r := sumMetric(m, "hindsight_events_rejected_total"); r != 0 {
		t.Errorf("Hindsight rejected %v events of real Alertmanager notifications", r)
	}

	// An alert on another service: a second incident, the first unchanged.
	payments := []amAlert{{
		Labels:      map[string]string{"alertname": "QueueBacklog", "service": "payments", "severity": "warning"},
		Annotations: map[string]string{"summary": "payments queue is backing up"},
		StartsAt:    time.Now().UTC().Add(-5 * time.Second).Truncate(time.Millisecond),
		EndsAt:      time.Now().UTC().Add(time.Minute),
	}}
	if err := am.post(payments); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a second incident for payments", func() (bool, string) {
		incs := h.incidents(t)
		p := forService(incs, "payments")
		return len(incs) == 2 && len(p) == 1 && len(p[0].Timeline) == 1, describe(incs)
	})
	incs = h.incidents(t)
	p, c := forService(incs, "payments")[0], forService(incs, "checkout")
	if p.Status != hindsight.StatusOpen || p.Severity != "warning" || p.ID == inc.ID || p.Timeline[0].Kind != hindsight.KindAlertFiring {
		t.Errorf("payments incident: %s; want open, warning, one alert.firing", describe([]hindsight.Incident{p}))
	}
	if len(c) != 1 || c[0].ID != inc.ID || c[0].Status != hindsight.StatusResolved || len(c[0].Timeline) != 4 {
		t.Errorf("checkout after the payments alert: %s; want the same resolved incident with 4 entries", describe(c))
	}
	am.checkWebhookDelivery(t)
}

// keepFiring re-posts alerts to Alertmanager every second until the
// returned function is called, which returns once the posting stopped.
func keepFiring(t *testing.T, am *alertmanager, alerts []amAlert) (stop func()) {
	t.Helper()
	post := func() error {
		for i := range alerts {
			alerts[i].EndsAt = time.Now().UTC().Add(15 * time.Second).Truncate(time.Millisecond)
		}
		return am.post(alerts)
	}
	if err := post(); err != nil {
		t.Fatal(err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if err := post(); err != nil {
					t.Errorf("re-post firing alerts: %v", err)
					return
				}
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			<-stopped
		})
	}
	t.Cleanup(stop)
	return stop
}
