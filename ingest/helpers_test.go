package ingest_test

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
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

// recordingPublisher keeps what it is given and, like JetStream with
// Nats-Msg-Id, counts an ID it already has as a duplicate.
type recordingPublisher struct {
	mu      sync.Mutex
	events  []hindsight.Event // every event accepted, duplicates left out
	seen    map[string]bool
	calls   int
	err     error                       // returned by every Publish when set
	publish func(context.Context) error // called first when set
}

func (p *recordingPublisher) Publish(ctx context.Context, events []hindsight.Event) (int, error) {
	if p.publish != nil {
		if err := p.publish(ctx); err != nil {
			return 0, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.err != nil {
		return 0, p.err
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	dups := 0
	for _, ev := range events {
		if p.seen[ev.ID] {
			dups++
			continue
		}
		p.seen[ev.ID] = true
		p.events = append(p.events, ev)
	}
	return dups, nil
}

func (p *recordingPublisher) published() []hindsight.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]hindsight.Event(nil), p.events...)
}

func (p *recordingPublisher) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// incidentMap is an ingest.Incidents over a map; redirects maps an old ID
// to the incident that absorbed it, as after a merge.
type incidentMap struct {
	incidents map[string]*hindsight.Incident
	redirects map[string]string
	err       error
}

func (m incidentMap) Incident(_ context.Context, id string) (*hindsight.Incident, error) {
	if m.err != nil {
		return nil, m.err
	}
	if to, ok := m.redirects[id]; ok {
		id = to
	}
	inc, ok := m.incidents[id]
	if !ok {
		return nil, fmt.Errorf("incident %s: %w", id, hindsight.ErrNotFound)
	}
	return inc, nil
}

var (
	receivedAt   = time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)
	testIncident = &hindsight.Incident{
		ID:      "i-checkout-1",
		Service: "checkout",
		Key:     "checkout",
		Anchor:  "f78816deac5e68e9@2026-11-22T04:08:14Z",
	}
)

// fixedNow returns a clock stuck at receivedAt, in another zone, so that
// tests see whether ingest converts to UTC.
func fixedNow() time.Time { return receivedAt.In(time.FixedZone("CET", 3600)) }

// newServer starts a Handler on loopback. Unset options get test defaults:
// a recording publisher, a fixed clock and incidents holding testIncident.
func newServer(t *testing.T, opts ingest.Options) (*httptest.Server, *recordingPublisher) {
	t.Helper()
	pub, _ := opts.Publisher.(*recordingPublisher)
	if opts.Publisher == nil {
		pub = &recordingPublisher{}
		opts.Publisher = pub
	}
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	if opts.Incidents == nil {
		opts.Incidents = incidentMap{
			incidents: map[string]*hindsight.Incident{testIncident.ID: testIncident},
			redirects: map[string]string{"i-merged-away": testIncident.ID},
		}
	}
	h, err := ingest.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, pub
}

// reply is a decoded answer.
type reply struct {
	status int
	header http.Header
	raw    string
	ok     ingest.Response
	err    struct {
		Error    string             `json:"error"`
		Rejected []ingest.Rejection `json:"rejected"`
	}
}

// post sends body with the given headers ("Content-Type" defaults to
// application/json; an empty value removes it).
func post(t *testing.T, url string, body []byte, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.Header.Get("Content-Type") != "application/json" {
		return r
	}
	target := any(&r.ok)
	if resp.StatusCode >= 300 {
		target = &r.err
	}
	if err := json.Unmarshal(raw, target); err != nil {
		t.Fatalf("decode answer %s: %v", raw, err)
	}
	return r
}

// fixture reads a file of testdata/alertmanager-0.25.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "alertmanager-0.25", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustJSON marshals v for a request body.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventIDs(evs []hindsight.Event) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}
