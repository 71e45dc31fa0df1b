package correlate_test

import (
	"context"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// natsbus applies the siblings of a poison event one by one, each with
// Seq = envelope seq - 1 (what app.go passes to Apply). Two siblings that
// update one incident give two "updated" notices, named by the state each
// left the incident in, so the notices stream keeps both.
func TestEventsAppliedApartAreNoticedApart(t *testing.T) {
	cfg := correlate.DefaultConfig()
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	mk := func(name string, at time.Duration) hindsight.Event {
		return alertSpec{name: name, labels: map[string]string{"service": "checkout"}, starts: day.Add(at), received: day.Add(at)}.events()[0]
	}
	store := openStore(t)
	c, _ := correlate.New(cfg, store, nil, nil)
	seen := map[string]uint64{}
	c.Notify(func(_ context.Context, ns []hindsight.Notice) {
		for _, n := range ns {
			id := natsbus.NoticeMsgID(n)
			if _, ok := seen[id]; ok {
				t.Errorf("a second %s notice of %s has Nats-Msg-Id %q: dropped by JetStream", n.Change, n.Incident, id)
			}
			seen[id] = n.Seq
		}
	})
	// seq 4: the incident opens. seq 5: an envelope [poison, b, c]; b and
	// c are applied apart with seq 4.
	if err := c.Apply(context.Background(), []hindsight.Event{mk("A", 0)}, 4); err != nil {
		t.Fatal(err)
	}
	for _, e := range []hindsight.Event{mk("B", time.Minute), mk("C", 2*time.Minute)} {
		if err := c.Apply(context.Background(), []hindsight.Event{e}, 5-1); err != nil {
			t.Fatal(err)
		}
	}
}
