package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/sink"
)

// These tests boot the whole program (embedded NATS, bbolt, correlator,
// HTTP) and drive it through its HTTP surface, as app's tests do.

const fixtures = "../ingest/testdata/alertmanager-0.25"

func boot(t *testing.T, dataDir, config string) *app.App {
	t.Helper()
	o := app.Options{Listen: "127.0.0.1:0", DataDir: dataDir}
	if config != "" {
		o.ConfigFile = filepath.Join(t.TempDir(), "hindsight.yml")
		if err := os.WriteFile(o.ConfigFile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := app.New(context.Background(), o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func call(t *testing.T, method, url string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

func postFixture(t *testing.T, a *app.App, name string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	if status, reply := call(t, "POST", "http://"+a.Addr()+"/hooks/alertmanager", body); status != http.StatusOK {
		t.Fatalf("POST /hooks/alertmanager %s = %d %s, want 200", name, status, reply)
	}
}

func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// resolvedIncident fires and resolves the Alertmanager 0.25 captures'
// checkout alert and returns the incident once it has resolved.
func resolvedIncident(t *testing.T, a *app.App) *hindsight.Incident {
	t.Helper()
	postFixture(t, a, "01-first-firing.json")
	postFixture(t, a, "04-resolved.json")
	var inc *hindsight.Incident
	eventually(t, 15*time.Second, "the incident to resolve", func() bool {
		incs, _, err := a.Store().List(context.Background(), listAll)
		if err != nil || len(incs) != 1 || incs[0].Status != hindsight.StatusResolved {
			return false
		}
		inc = &incs[0]
		return true
	})
	return inc
}

func publish(t *testing.T, a *app.App, id string) {
	t.Helper()
	status, reply := call(t, "PUT", "http://"+a.Addr()+"/api/v1/incidents/"+id+"/state", []byte(`{"state":"published"}`))
	if status/100 != 2 {
		t.Fatalf("PUT state published = %d %s, want 2xx", status, reply)
	}
}

func postmortem(t *testing.T, a *app.App, id string) string {
	t.Helper()
	status, md := call(t, "GET", "http://"+a.Addr()+"/api/v1/incidents/"+id+"/postmortem.md", nil)
	if status != 200 {
		t.Fatalf("GET postmortem.md = %d %s", status, md)
	}
	return string(md)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func metric(t *testing.T, a *app.App, name, sinkName string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == sinkName {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestDirectorySinkWritesThePublishedPostmortem(t *testing.T) {
	out := filepath.Join(t.TempDir(), "postmortems")
	a := boot(t, t.TempDir(), "sinks:\n  directory: {path: "+out+"}\n")
	inc := resolvedIncident(t, a)
	file := filepath.Join(out, "2026-11-22-checkout-"+inc.ID+".md")
	if got := sink.FileName(inc); got != filepath.Base(file) {
		t.Fatalf("FileName = %s, want %s", got, filepath.Base(file))
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(file); err == nil {
		t.Fatal("the postmortem was written before it was published")
	}
	publish(t, a, inc.ID)
	eventually(t, 15*time.Second, "the postmortem file", func() bool { return readFile(file) != "" })
	got, want := readFile(file), postmortem(t, a, inc.ID)
	if got != want {
		t.Fatalf("file holds\n%s\nwant the rendered draft\n%s", got, want)
	}
	for _, s := range []string{"## Issue Summary", "## Timeline", "HighLatency"} {
		if !strings.Contains(got, s) {
			t.Fatalf("file lacks %q:\n%s", s, got)
		}
	}
	// Edited and published again: the same file, rewritten.
	status, reply := call(t, "PUT", "http://"+a.Addr()+"/api/v1/incidents/"+inc.ID+"/draft",
		[]byte(`{"version":0,"summary":"Checkout was slow for two minutes."}`))
	if status/100 != 2 {
		t.Fatalf("PUT draft = %d %s", status, reply)
	}
	publish(t, a, inc.ID)
	eventually(t, 15*time.Second, "the rewritten postmortem", func() bool {
		return strings.Contains(readFile(file), "Checkout was slow for two minutes.")
	})
	// Edited while published, and not published again: the file follows.
	status, reply = call(t, "PUT", "http://"+a.Addr()+"/api/v1/incidents/"+inc.ID+"/draft",
		[]byte(`{"version":1,"resolution":"Rolled back v2.3.1."}`))
	if status/100 != 2 {
		t.Fatalf("PUT draft = %d %s", status, reply)
	}
	eventually(t, 15*time.Second, "the file to follow an edit of the published postmortem", func() bool {
		f := readFile(file)
		return strings.Contains(f, "Rolled back v2.3.1.") && strings.Contains(f, "Checkout was slow for two minutes.")
	})
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1 (no temporary files left): %v", len(entries), entries)
	}
	// Counted once the delivery returns, a moment after the file is in place.
	eventually(t, 5*time.Second, "hindsight_sink_delivered_total{sink=directory} to reach 2", func() bool {
		return metric(t, a, "hindsight_sink_delivered_total", "directory") >= 2
	})
}

// Published while no directory sink ran, or its file lost: a process
// that starts with the sink writes it.
func TestDirectorySinkCatchesUpAtStartup(t *testing.T) {
	data := t.TempDir()
	a := boot(t, data, "")
	inc := resolvedIncident(t, a)
	publish(t, a, inc.ID)
	eventually(t, 15*time.Second, "the incident to be published", func() bool {
		got, err := a.Store().Incident(context.Background(), inc.ID)
		return err == nil && got.Postmortem.State == hindsight.DraftStatePublished
	})
	want := postmortem(t, a, inc.ID)
	a.Close()

	out := filepath.Join(t.TempDir(), "postmortems")
	a = boot(t, data, "sinks:\n  directory: {path: "+out+"}\n")
	file := filepath.Join(out, sink.FileName(inc))
	eventually(t, 15*time.Second, "the caught-up postmortem file", func() bool { return readFile(file) != "" })
	if got := readFile(file); got != want {
		t.Fatalf("file holds\n%s\nwant\n%s", got, want)
	}
}

// hook records the requests a webhook receives and answers with the
// next of its statuses (the last one from then on).
type hook struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	headers  []http.Header
	srv      *httptest.Server
}

func newHook(t *testing.T, statuses ...int) *hook {
	h := &hook{statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		status := h.statuses[min(len(h.bodies), len(h.statuses)-1)]
		h.bodies, h.headers = append(h.bodies, body), append(h.headers, r.Header.Clone())
		h.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":%d}`, status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

func webhookConfig(url string) string {
	return fmt.Sprintf(`sinks:
  external_url: https://hindsight.example.com/
  webhook:
    url: %s
    bearer_token: hook-token
    headers: {X-Team: sre}
    timeout: 2s
    skip_older_than: 0  # the captures are from 2026-11-22
`, url)
}

func TestWebhookSinkPostsOnResolveAndRetriesA503(t *testing.T) {
	h := newHook(t, http.StatusServiceUnavailable, http.StatusOK)
	a := boot(t, t.TempDir(), webhookConfig(h.srv.URL+"/hooks/slack"))
	inc := resolvedIncident(t, a)
	eventually(t, 15*time.Second, "the webhook to be retried after its 503", func() bool { return h.requests() >= 2 })
	time.Sleep(300 * time.Millisecond)
	if n := h.requests(); n != 2 {
		t.Fatalf("webhook got %d requests, want 2 (one 503, then one 200)", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !bytes.Equal(h.bodies[0], h.bodies[1]) {
		t.Fatalf("the retry posted something else:\n%s\n%s", h.bodies[0], h.bodies[1])
	}
	if got := h.headers[1].Get("Authorization"); got != "Bearer hook-token" {
		t.Fatalf("Authorization = %q", got)
	}
	if got := h.headers[1].Get("X-Team"); got != "sre" {
		t.Fatalf("X-Team = %q", got)
	}
	var s sink.Summary
	if err := json.Unmarshal(h.bodies[1], &s); err != nil {
		t.Fatalf("decode %s: %v", h.bodies[1], err)
	}
	url := "https://hindsight.example.com/incidents/" + inc.ID
	want := "Resolved: HighLatency on checkout (+1 more alert) (checkout, critical) after 2m12s — " + url
	if s.Text != want || s.Incident != inc.ID || s.URL != url || s.Status != "resolved" || s.Service != "checkout" ||
		s.DurationSeconds == nil || *s.DurationSeconds != 132 || s.StartedAt == nil || s.ResolvedAt == nil {
		t.Fatalf("posted %s\nwant text %q, url %s, 132 seconds", h.bodies[1], want, url)
	}
	eventually(t, 5*time.Second, "hindsight_sink_delivered_total{sink=webhook} to reach 1", func() bool {
		return metric(t, a, "hindsight_sink_delivered_total", "webhook") >= 1
	})
	if n := metric(t, a, "hindsight_sink_delivered_total", "webhook"); n != 1 {
		t.Fatalf("hindsight_sink_delivered_total{sink=webhook} = %v, want 1", n)
	}
}

func TestWebhookSinkGivesUpOnA400(t *testing.T) {
	h := newHook(t, http.StatusBadRequest)
	a := boot(t, t.TempDir(), webhookConfig(h.srv.URL))
	resolvedIncident(t, a)
	eventually(t, 15*time.Second, "the webhook to be called", func() bool { return h.requests() >= 1 })
	eventually(t, 5*time.Second, "the failure to be counted", func() bool {
		return metric(t, a, "hindsight_sink_failed_total", "webhook") == 1
	})
	time.Sleep(1500 * time.Millisecond) // past the first retry's delay
	if n := h.requests(); n != 1 {
		t.Fatalf("webhook got %d requests, want 1: a 400 is not retried", n)
	}
}

// A webhook that never answers (or cannot be reached) holds up its own
// sink, never the fold.
func TestSlowWebhookNeverBlocksFolding(t *testing.T) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		defer calls.Done()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	for _, tc := range []struct{ name, url string }{
		{"slow", slow.URL},
		{"unreachable", "http://127.0.0.1:1/hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := boot(t, t.TempDir(), webhookConfig(tc.url)+"    on: [opened, resolved]\n")
			start := time.Now()
			inc := resolvedIncident(t, a)
			// More changes while the sink waits on the webhook.
			status, reply := call(t, "POST", "http://"+a.Addr()+"/api/v1/incidents/"+inc.ID+"/notes", []byte(`{"text":"rolled back"}`))
			if status/100 != 2 {
				t.Fatalf("POST note = %d %s", status, reply)
			}
			eventually(t, 5*time.Second, "the note to be folded", func() bool {
				got, err := a.Store().Incident(context.Background(), inc.ID)
				return err == nil && strings.Contains(kinds(got), "note")
			})
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("folding took %s with a %s webhook", d, tc.name)
			}
		})
	}
}

func kinds(inc *hindsight.Incident) string {
	var k []string
	for _, e := range inc.Timeline {
		k = append(k, string(e.Kind))
	}
	return strings.Join(k, ",")
}

var listAll = boltstore.ListOptions{Limit: 10}

// The first start with a webhook sink, on a stream that already holds an
// incident's firing and resolve: the correlator folds that backlog at
// once, and the sink's consumer, which starts with the notices published
// after it is created, must be in place before the first is.
func TestWebhookSinkPostsTheBacklogsResolveOnFirstStart(t *testing.T) {
	data := t.TempDir()
	in, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: data, Roles: []string{app.RoleIngest}})
	if err != nil {
		t.Fatalf("start the ingest role: %v", err)
	}
	postFixture(t, in, "01-first-firing.json")
	postFixture(t, in, "04-resolved.json")
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}

	h := newHook(t, http.StatusOK)
	boot(t, data, webhookConfig(h.srv.URL))
	eventually(t, 15*time.Second, "the backlog's resolve to be posted", func() bool { return h.requests() >= 1 })
	h.mu.Lock()
	defer h.mu.Unlock()
	var s sink.Summary
	if err := json.Unmarshal(h.bodies[0], &s); err != nil || s.Status != "resolved" || s.Service != "checkout" {
		t.Fatalf("posted %s (%v), want the checkout incident's resolve", h.bodies[0], err)
	}
}
