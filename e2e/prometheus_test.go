package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// The whole chain users run: Debian's Prometheus scrapes a service's
// error ratio every second and evaluates an alerting rule over it; the
// alert goes to Debian's Alertmanager, which notifies Hindsight. The ratio
// goes up, then down: one incident opens, then resolves, with one firing
// and one resolved entry.
func TestRealPrometheusToAlertmanagerToHindsight(t *testing.T) {
	t.Parallel()
	amBin := program(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	promBin := program(t, "prometheus", "prometheus")
	h := bootHindsight(t)
	am := startAlertmanager(t, amBin, h)

	// The service Prometheus scrapes; the test sets its error ratio.
	var ratio atomic.Uint64
	setRatio := func(v float64) { ratio.Store(math.Float64bits(v)) }
	setRatio(0.01)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP demo_error_ratio Share of requests that failed.\n# TYPE demo_error_ratio gauge\ndemo_error_ratio{service=\"checkout\"} %g\n",
			math.Float64frombits(ratio.Load()))
	}))
	t.Cleanup(svc.Close)

	prom := startPrometheus(t, promBin, am, strings.TrimPrefix(svc.URL, "http://"))

	// Up: the rule fires, and Hindsight opens an incident.
	start := time.Now()
	setRatio(0.9)
	var inc hindsight.Incident
	eventually(t, 45*time.Second, "an incident opened by HighErrorRate on checkout", func() (bool, string) {
		incs := h.incidents(t)
		for _, i := range incs {
			for _, e := range i.Timeline {
				if e.Kind == hindsight.KindAlertFiring && e.Labels["alertname"] == "HighErrorRate" && e.Labels["service"] == "checkout" {
					inc = i
					return true, ""
				}
			}
		}
		return false, describe(incs)
	})
	if inc.Status != hindsight.StatusOpen || inc.Service != "checkout" || inc.Severity != "critical" {
		t.Errorf("while firing: %s; want open, checkout, critical", describe([]hindsight.Incident{inc}))
	}
	if inc.StartedAt.Before(start.Add(-time.Second)) || inc.DetectedAt == nil || inc.TimeToDetect == nil {
		t.Errorf("started_at %s (ratio set at %s), detected_at %v, time_to_detect %v; want the rule's activation, and both set",
			inc.StartedAt, start.UTC(), inc.DetectedAt, deref(inc.TimeToDetect))
	}
	e := inc.Timeline[0]
	if e.Labels["job"] != "app" || e.Labels["severity"] != "critical" || !strings.Contains(e.Summary, "checkout") {
		t.Errorf("firing entry = %+v; want the rule's labels (job app, severity critical) and its summary", e)
	}

	// Down: the rule stops firing, Prometheus sends the resolution, and
	// Alertmanager passes it on at its next group_interval.
	setRatio(0.01)
	eventually(t, 60*time.Second, "the incident to resolve", func() (bool, string) {
		incs := h.incidents(t)
		if len(incs) == 1 {
			inc = incs[0]
		}
		return len(incs) == 1 && inc.Status == hindsight.StatusResolved, describe(incs)
	})
	t.Logf("incident %s: started %s, detected %v (time to detect %vs), resolved %v (time to resolve %vs)",
		inc.ID, inc.StartedAt, inc.DetectedAt, deref(inc.TimeToDetect), inc.ResolvedAt, deref(inc.TimeToResolve))

	// Prometheus keeps re-sending the resolved alert, Alertmanager keeps
	// its group for a while: give them two group intervals to add anything.
	time.Sleep(4 * time.Second)
	incs := h.incidents(t)
	if len(incs) != 1 {
		t.Fatalf("%d incidents: %s; want one", len(incs), describe(incs))
	}
	inc = incs[0]
	n := countKinds(inc)
	if len(inc.Timeline) != 2 || n[hindsight.KindAlertFiring] != 1 || n[hindsight.KindAlertResolved] != 1 {
		t.Errorf("timeline: %s; want exactly one alert.firing and one alert.resolved", describe(incs))
	}
	if inc.Status != hindsight.StatusResolved || inc.ResolvedAt == nil || inc.TimeToResolve == nil || !inc.ResolvedAt.After(inc.StartedAt) {
		t.Errorf("incident: status %s, resolved_at %v, time_to_resolve %v; want resolved after it started", inc.Status, inc.ResolvedAt, deref(inc.TimeToResolve))
	}
	md, status, err := get(h.base + "/api/v1/incidents/" + inc.ID + "/postmortem.md")
	if err != nil || status != http.StatusOK || !strings.Contains(string(md), "## Timeline") || !strings.Contains(string(md), "HighErrorRate") {
		t.Errorf("postmortem draft = %d %v:\n%s", status, err, md)
	}
	am.checkWebhookDelivery(t)
	if sent := sumMetric(metricsAt(t, "http://"+prom.addr+"/metrics"), "prometheus_notifications_sent_total"); sent == 0 {
		t.Errorf("Prometheus sent no alerts to Alertmanager")
	}
}

// startPrometheus starts Debian's prometheus on a free loopback port,
// scraping target (host:port) every second as job "app", evaluating
// HighErrorRate every second and alerting am, and waits until it is ready.
func startPrometheus(t *testing.T, bin string, am *alertmanager, target string) *proc {
	t.Helper()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte(`groups:
  - name: demo
    rules:
      - alert: HighErrorRate
        expr: demo_error_ratio > 0.5
        for: 0s
        labels:
          severity: critical
        annotations:
          summary: '{{ $labels.service }}: {{ $value }} of requests fail'
`), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [%q]
`, rules, am.addr, target), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, "prometheus", dir, bin, "/-/ready", func(addr string) []string {
		return []string{
			"--config.file=" + config,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			// Re-send firing alerts every 2s rather than every minute, so
			// a send lost while Alertmanager is busy is retried within the
			// test's patience.
			"--rules.alert.resend-delay=2s",
		}
	})
}
