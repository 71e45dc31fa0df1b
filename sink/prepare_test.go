package sink_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/internal/natstest"
	"github.com/hindsight-sre/hindsight/natsbus"
	"github.com/hindsight-sre/hindsight/sink"
)

// resolvedIncidents answers every ID with a resolved checkout incident.
type resolvedIncidents struct{}

func (resolvedIncidents) Incident(_ context.Context, id string) (*hindsight.Incident, error) {
	start := time.Now().Add(-10 * time.Minute).UTC()
	end := start.Add(5 * time.Minute)
	return &hindsight.Incident{ID: id, Key: "checkout", Title: "HighLatency on checkout", Service: "checkout", Severity: "critical",
		Status: hindsight.StatusResolved, StartedAt: start, ResolvedAt: &end}, nil
}

func (resolvedIncidents) List(context.Context, boltstore.ListOptions) ([]hindsight.Incident, string, error) {
	return nil, "", nil
}

// A sink's consumer starts with the notices published after it is
// created, so the app prepares the sinks before the correlator folds
// anything. On a real JetStream: a resolve published between Prepare and
// Run is posted; without Prepare it is not (Run creates the consumer after
// it), while one published once Run follows is posted either way.
func TestPrepareFollowsFromBeforeRun(t *testing.T) {
	for _, prepare := range []bool{true, false} {
		name := map[bool]string{true: "prepared", false: "not prepared"}[prepare]
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bus, err := natsbus.Open(ctx, natsbus.Options{Server: natstest.RunJetStream(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(bus.Close)
			if err := bus.OpenNotices(ctx, natsbus.NoticeStreamOptions{}); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var posted []string
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var s sink.Summary
				body, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(body, &s); err != nil {
					t.Errorf("posted %s: %v", body, err)
				}
				mu.Lock()
				posted = append(posted, s.Incident)
				mu.Unlock()
			}))
			t.Cleanup(hook.Close)
			s, err := sink.New(sink.Options{Source: bus, Incidents: resolvedIncidents{},
				Webhook: &sink.WebhookOptions{URL: hook.URL, Consumer: "hindsight-sink-webhook"}})
			if err != nil {
				t.Fatal(err)
			}
			notify := bus.Notifier(prometheus.NewRegistry())
			resolve := func(id string, seq uint64) {
				notify(ctx, []hindsight.Notice{{Incident: id, Key: "checkout", Change: hindsight.NoticeResolved, Status: hindsight.StatusResolved,
					Title: "HighLatency on checkout", Service: "checkout", Severity: "critical", Seq: seq, At: time.Now()}})
			}

			if prepare {
				s.Prepare(ctx, 5*time.Second)
			}
			resolve("inc-before-run", 1)
			done := make(chan struct{})
			go func() {
				s.Run(ctx)
				close(done)
			}()
			defer func() { cancel(); <-done }()
			// Once Run follows, a notice is posted: publish until one is.
			deadline := time.Now().Add(15 * time.Second)
			for seq := uint64(2); ; seq++ {
				resolve("inc-after-run", seq)
				time.Sleep(50 * time.Millisecond)
				mu.Lock()
				got := slices.Contains(posted, "inc-after-run")
				mu.Unlock()
				if got {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("Run never posted a resolve")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if got := slices.Contains(posted, "inc-before-run"); got != prepare {
				t.Fatalf("the resolve published before Run was posted: %v, want %v (posted %v)", got, prepare, posted)
			}
		})
	}
}
