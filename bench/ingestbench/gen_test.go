package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

type countingPublisher struct{ events []hindsight.Event }

func (p *countingPublisher) Publish(_ context.Context, evs []hindsight.Event) (int, error) {
	p.events = append(p.events, evs...)
	return 0, nil
}

// The webhook bodies are ones Hindsight's own handler accepts whole, with
// the fingerprints Alertmanager would compute, and every alert distinct.
func TestWebhookBodiesAreAccepted(t *testing.T) {
	pub := &countingPublisher{}
	h, err := ingest.New(ingest.Options{Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(ShapeHindsight, 10, 3, "t1")
	start := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	seen := map[string]bool{}
	for n := range uint64(7) {
		body := g.body(nil, n, start)
		var p template.Data
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("request %d: %v\n%s", n, err, body)
		}
		for _, a := range p.Alerts {
			ls := model.LabelSet{}
			for k, v := range a.Labels {
				ls[model.LabelName(k)] = model.LabelValue(v)
			}
			if got, want := a.Fingerprint, ls.Fingerprint().String(); got != want {
				t.Errorf("fingerprint %s, want %s", got, want)
			}
			if seen[a.Fingerprint] {
				t.Errorf("fingerprint %s twice", a.Fingerprint)
			}
			seen[a.Fingerprint] = true
			if !a.StartsAt.Equal(start) {
				t.Errorf("startsAt %s, want %s", a.StartsAt, start)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/hooks/alertmanager", bytes.NewReader(body)))
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"accepted":10,`)) {
			t.Fatalf("request %d: %d %s", n, rec.Code, rec.Body)
		}
	}
	if len(pub.events) != 70 {
		t.Errorf("published %d events, want 70", len(pub.events))
	}
}

// Alertmanager's postable alerts hold the same labels, annotations and
// startsAt as the webhook's alerts.
func TestPostableBodiesMatchWebhook(t *testing.T) {
	start := time.Date(2026, 11, 22, 4, 8, 14, 0, time.UTC)
	var hook template.Data
	if err := json.Unmarshal(newGenerator(ShapeBare, 4, 5, "t2").body(nil, 3, start), &hook); err != nil {
		t.Fatal(err)
	}
	var postable []struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		GeneratorURL string            `json:"generatorURL"`
	}
	body := newGenerator(ShapeAlertmanager, 4, 5, "t2").body(nil, 3, start)
	if err := json.Unmarshal(body, &postable); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(postable) != 4 || len(hook.Alerts) != 4 {
		t.Fatalf("%d postable and %d webhook alerts, want 4 each", len(postable), len(hook.Alerts))
	}
	for i, p := range postable {
		a := hook.Alerts[i]
		if !maps(p.Labels, a.Labels) || !maps(p.Annotations, a.Annotations) || !p.StartsAt.Equal(a.StartsAt) || p.GeneratorURL != a.GeneratorURL {
			t.Errorf("alert %d: postable %+v, webhook %+v", i, p, a)
		}
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       time.Duration
	}{
		{"plain", "1234 (hindsight) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 3250 * time.Millisecond},
		{"spaces in name", "99 (a b) c) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", 30 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.line)
			if err != nil || got != tc.want {
				t.Errorf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	if _, err := parseStat("12 (x) S 1 2"); err == nil {
		t.Error("short line: got no error")
	}
}
