package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

// memPublisher stands in for JetStream: it keeps what ingest publishes
// and deduplicates by event ID, as Nats-Msg-Id does.
type memPublisher struct {
	mu     sync.Mutex
	events []hindsight.Event
	ids    map[string]bool
}

func (p *memPublisher) Publish(_ context.Context, events []hindsight.Event) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids == nil {
		p.ids = map[string]bool{}
	}
	dups := 0
	for _, ev := range events {
		if p.ids[ev.ID] {
			dups++
			continue
		}
		p.ids[ev.ID] = true
		p.events = append(p.events, ev)
	}
	return dups, nil
}

// clock is a fake clock that moves on by step at every reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// instantAcks acknowledges each fresh notification's alerts as soon as
// the test records them.
type instantAcks struct{ recent map[string][]sentAlert }

func (a *instantAcks) recentAlerts(service string, since time.Time) []sentAlert {
	var out []sentAlert
	for _, s := range a.recent[service] {
		if s.at.After(since) {
			out = append(out, s)
		}
	}
	return out
}

func (a *instantAcks) record(r request, at time.Time) {
	for i, al := range r.alerts {
		a.recent[r.service] = append(a.recent[r.service], sentAlert{alert: al, id: r.ids[i], at: at})
	}
}

func newIngest(t *testing.T, now func() time.Time) (http.Handler, *memPublisher) {
	t.Helper()
	pub := &memPublisher{}
	h, err := ingest.New(ingest.Options{Publisher: pub, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return h, pub
}

// Every request the generator makes is one ingest takes whole: the
// event IDs computed here are the ones ingest derives, nothing is
// rejected, fresh events are new and repeated ones are duplicates; and
// the traffic has the shape the flags ask for.
func TestGeneratorMatchesIngest(t *testing.T) {
	o := genOptions{AlertsPerNotification: 10, Services: 20, Instances: 5, FlapRate: 0.3, RepeatRatio: 0.25, OutOfOrder: 0.1, DeployEvery: 10, Seed: 7}
	clk := &clock{t: time.Now().UTC(), step: 5 * time.Millisecond}
	acks := &instantAcks{recent: map[string][]sentAlert{}}
	g := newGenerator(o, clk.now, acks)
	h, pub := newIngest(t, clk.now)

	var (
		notifications, repeats, fresh, late, deploys int
		resolved, flaps                              int
		sentOrder                                    = map[string]int{} // event ID → position of first delivery
		seq                                          int
		fpOf                                         = map[string]string{} // label set → fingerprint
	)
	hexFP := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for g.freshEvents < 6000 {
		r, ok := g.next()
		if !ok {
			t.Fatal("generator finished on its own")
		}
		seq++
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", r.path, strings.NewReader(string(r.body)))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s = %d %s; body %s", r.path, rec.Code, rec.Body, r.body)
		}
		var ans webhookAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatal(err)
		}
		if strings.Join(ans.Events, ",") != strings.Join(r.ids, ",") || len(ans.Rejected) > 0 {
			t.Fatalf("answer %s, want events %v", rec.Body, r.ids)
		}
		switch {
		case r.kind == kindDeploy:
			deploys++
			if ans.Duplicates != 0 {
				t.Fatalf("deploy %s: %d duplicates, want 0", r.body, ans.Duplicates)
			}
		case r.repeat:
			notifications++
			repeats++
			if ans.Duplicates != len(r.ids) {
				t.Fatalf("repeat: %d duplicates of %d", ans.Duplicates, len(r.ids))
			}
		default:
			notifications++
			fresh++
			if r.late {
				late++
			}
			if ans.Duplicates != 0 {
				t.Fatalf("fresh notification: %d duplicates, want 0: %s", ans.Duplicates, rec.Body)
			}
			acks.record(r, clk.now())
		}
		if r.kind != kindAlerts {
			continue
		}
		var n template.Data
		if err := json.Unmarshal(r.body, &n); err != nil {
			t.Fatal(err)
		}
		if n.Receiver == "" || n.GroupLabels["service"] != r.service || n.CommonLabels["service"] != r.service {
			t.Fatalf("notification header %+v", n)
		}
		for i, a := range n.Alerts {
			key := labelString(a.Labels)
			if fp, ok := fpOf[key]; ok && fp != a.Fingerprint {
				t.Fatalf("labels %s have fingerprints %s and %s", key, fp, a.Fingerprint)
			}
			fpOf[key] = a.Fingerprint
			if !hexFP.MatchString(a.Fingerprint) || a.Fingerprint != fingerprint(a.Labels) {
				t.Fatalf("fingerprint %q of %s", a.Fingerprint, key)
			}
			for _, l := range []string{"alertname", "service", "instance", "severity", "cluster", "env"} {
				if a.Labels[l] == "" {
					t.Fatalf("alert without %s: %v", l, a.Labels)
				}
			}
			if _, ok := sentOrder[r.ids[i]]; !ok {
				sentOrder[r.ids[i]] = seq
			}
			if r.repeat {
				continue
			}
			switch a.Status {
			case "firing":
				if !a.EndsAt.IsZero() {
					t.Fatalf("firing alert with endsAt %s", a.EndsAt)
				}
			case "resolved":
				resolved++
				if a.EndsAt.Before(a.StartsAt) {
					t.Fatalf("endsAt %s before startsAt %s", a.EndsAt, a.StartsAt)
				}
			}
		}
	}

	// What ingest published has the times DESIGN.md asks for.
	for _, ev := range pub.events {
		if ev.Time.After(ev.ReceivedAt.Add(time.Second)) || ev.Time.Before(ev.ReceivedAt.Add(-5*time.Minute)) {
			t.Fatalf("event %s at %s, received %s: not near now", ev.ID, ev.Time, ev.ReceivedAt)
		}
	}
	// A flap is a series' second or later occurrence.
	occurrences, series := map[string]bool{}, map[string]bool{}
	for _, ev := range pub.events {
		if ev.Alert != nil {
			occurrences[ev.Alert.OccurrenceID()] = true
			series[ev.Alert.Fingerprint] = true
		}
	}
	flaps = len(occurrences) - len(series)
	// Some resolutions went out before their firing.
	resolvedFirst := 0
	for _, ev := range pub.events {
		if ev.Kind == hindsight.KindAlertResolved {
			firing := hindsight.AlertEventID(ev.Alert.Fingerprint, ev.Alert.StartsAt, "firing")
			if f, ok := sentOrder[firing]; ok && f > sentOrder[ev.ID] {
				resolvedFirst++
			}
		}
	}
	t.Logf("%d notifications (%d fresh, %d late, %d repeats), %d deploys; %d resolved, %d flapped back, %d resolved before their firing",
		notifications, fresh, late, repeats, deploys, resolved, flaps, resolvedFirst)

	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.3f, want %.2f ± %.2f", what, got, want, tol)
		}
	}
	near("repeats/notifications", float64(repeats)/float64(notifications), o.RepeatRatio, 0.045)
	near("late/fresh", float64(late)/float64(fresh), o.OutOfOrder, 0.04)
	// A flapping series fires again once picked; the last few may not be.
	near("flaps/resolved", float64(flaps)/float64(resolved), o.FlapRate, 0.04)
	near("notifications/deploy", float64(notifications)/float64(deploys), float64(o.DeployEvery), 0.5)
	if resolvedFirst == 0 {
		t.Error("no resolution was delivered before its firing")
	}
}

func labelString(m template.KV) string {
	var b strings.Builder
	for _, p := range m.SortedPairs() {
		b.WriteString(p.Name + "=" + p.Value + ",")
	}
	return b.String()
}

// finish returns every notification held back for late delivery, and
// the same seed gives the same traffic.
func TestGeneratorFinishAndSeed(t *testing.T) {
	o := genOptions{AlertsPerNotification: 4, Services: 3, Instances: 2, FlapRate: 0.5, RepeatRatio: 0, OutOfOrder: 0.5, DeployEvery: 3, Seed: 42}
	gen := func() []request {
		clk := &clock{t: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC), step: time.Millisecond}
		g := newGenerator(o, clk.now, &instantAcks{})
		g.run = "fixed"
		var out []request
		for g.freshEvents < 200 {
			r, _ := g.next()
			out = append(out, r)
		}
		g.finish()
		for {
			r, ok := g.next()
			if !ok {
				break
			}
			out = append(out, r)
		}
		return out
	}
	a, b := gen(), gen()
	if len(a) != len(b) {
		t.Fatalf("same seed: %d then %d requests", len(a), len(b))
	}
	fresh := 0
	for i := range a {
		if string(a[i].body) != string(b[i].body) {
			t.Fatalf("same seed, request %d differs:\n%s\n%s", i, a[i].body, b[i].body)
		}
		if a[i].kind == kindAlerts {
			fresh += len(a[i].ids)
		} else {
			fresh++
		}
	}
	if fresh < 200 {
		t.Fatalf("%d events after finish, want the 200 generated (held ones included)", fresh)
	}
}
