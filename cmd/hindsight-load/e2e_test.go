package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
)

// runLoad runs the command with args and --json, and decodes its report.
func runLoad(t *testing.T, args ...string) (int, Report) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, append(args, "--json", "--quiet"), &stdout, &stderr)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, stdout %q, stderr %s: %v", code, stdout.String(), stderr.String(), err)
	}
	t.Logf("exit %d; stderr %s; report:\n%s", code, stderr.String(), stdout.String())
	return code, rep
}

// Against the real Hindsight (embedded NATS, bbolt, auth on every
// endpoint), two seconds of flapping alerts, repeats, late deliveries and
// deploys: every acknowledged alert event ends up on exactly one
// timeline entry however often it was repeated.
func TestLoadAgainstHindsight(t *testing.T) {
	config := filepath.Join(t.TempDir(), "hindsight.yml")
	if err := os.WriteFile(config, []byte(`
auth:
  alertmanager: {bearer_token: load-token}
  deploy: {bearer_token: load-token}
  api: {bearer_token: load-token}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ConfigFile: config})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	code, rep := runLoad(t, "--server", "http://"+a.Addr(), "--token", "load-token",
		"--duration", "2s", "--rate", "25", "--connections", "8", "--services", "4", "--instances", "3",
		"--alerts-per-notification", "5", "--flap-rate", "0.3", "--repeat-ratio", "0.3", "--out-of-order", "0.2",
		"--deploy-every", "5", "--settle", "15s", "--poll-interval", "100ms", "--seed", "1",
		"--pid", fmt.Sprint(os.Getpid()))
	if code != 0 || len(rep.Failures) > 0 {
		t.Fatalf("exit %d, failures %v", code, rep.Failures)
	}
	if !rep.Settled || rep.ExactlyOnce.Checked == 0 || rep.ExactlyOnce.Missing+rep.ExactlyOnce.Duplicated != 0 {
		t.Errorf("exactly once: %+v, settled %v; want every checked event once", rep.ExactlyOnce, rep.Settled)
	}
	if rep.Throughput.NotificationsPerSecond <= 0 || rep.Throughput.AlertsPerSecond <= 0 {
		t.Errorf("throughput %+v, want more than 0", rep.Throughput)
	}
	if rep.Sent.Repeats == 0 || rep.Duplicates.WantOnRepeats == 0 || rep.Duplicates.OnRepeats > rep.Duplicates.WantOnRepeats || rep.Duplicates.OnFresh != 0 {
		t.Errorf("repeats: %d sent, %d duplicates (at most %d), %d on fresh", rep.Sent.Repeats, rep.Duplicates.OnRepeats, rep.Duplicates.WantOnRepeats, rep.Duplicates.OnFresh)
	}
	if rep.Sent.Late == 0 || rep.Sent.Deploys == 0 || rep.Deploys.Acked == 0 {
		t.Errorf("sent %+v, deploys %+v: want late notifications and deploys", rep.Sent, rep.Deploys)
	}
	if rep.Errors != 0 || rep.Answers["200"] != rep.Sent.Notifications+rep.Sent.Deploys {
		t.Errorf("answers %v for %+v, want a 200 for each", rep.Answers, rep.Sent)
	}
	if rep.Latency.WebhookAlerts.N == 0 || rep.Latency.VisibilityAlerts.N != rep.ExactlyOnce.Checked {
		t.Errorf("latencies %+v, want a webhook latency and one visibility per checked event", rep.Latency)
	}
	if runtime.GOOS == "linux" && rep.RSS.PeakBytes == 0 {
		t.Errorf("rss %+v, want a peak", rep.RSS)
	}
}

// A server that loses one acknowledged event and doubles another fails
// the run, naming both.
func TestLoadReportsLostAndDoubled(t *testing.T) {
	h, pub := newIngest(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/hooks/", h)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {})
	var lost, doubled string
	mux.HandleFunc("GET /api/v1/incidents", func(w http.ResponseWriter, r *http.Request) {
		var inc hindsight.Incident
		if r.URL.Query().Get("status") == "" {
			pub.mu.Lock()
			for _, ev := range pub.events {
				if ev.Kind.IsAlert() && lost == "" {
					lost = ev.ID
				} else if ev.Kind.IsAlert() && doubled == "" {
					doubled = ev.ID
				}
				switch ev.ID {
				case lost:
				case doubled:
					inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{ID: ev.ID}, hindsight.TimelineEntry{ID: ev.ID})
				default:
					inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{ID: ev.ID})
				}
			}
			pub.mu.Unlock()
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"incidents": []hindsight.Incident{inc}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	code, rep := runLoad(t, "--server", srv.URL, "--events", "200", "--settle", "1s", "--poll-interval", "50ms", "--seed", "3")
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if rep.Settled || rep.ExactlyOnce.Missing != 1 || rep.ExactlyOnce.Duplicated != 1 ||
		rep.ExactlyOnce.MissingIDs[0] != lost || rep.ExactlyOnce.DuplicatedIDs[0] != doubled+" ×2" {
		t.Errorf("exactly once %+v, settled %v; want %s missing and %s duplicated", rep.ExactlyOnce, rep.Settled, lost, doubled)
	}
	if rep.RSS.Note == "" {
		t.Error("no note that RSS was not measured")
	}
}
