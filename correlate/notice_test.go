package correlate_test

import (
	"context"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// An incident resolves at 10:10, a late alert (started 10:05, inside the
// incident) reopens it and resolves at 10:08: the incident resolves again
// at 10:10. The two resolutions are two notices, with two Nats-Msg-Ids,
// so JetStream's duplicate window keeps both and sinks hear the second.
func TestASecondResolutionIsANewNotice(t *testing.T) {
	cfg := correlate.DefaultConfig()
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	a1 := alertSpec{name: "HighLatency", labels: map[string]string{"service": "checkout"},
		starts: day, received: day, ends: day.Add(10 * time.Minute), resolvedReceived: day.Add(10 * time.Minute)}
	a2 := alertSpec{name: "HighErrorRate", labels: map[string]string{"service": "checkout"},
		starts: day.Add(5 * time.Minute), received: day.Add(12 * time.Minute), ends: day.Add(8 * time.Minute), resolvedReceived: day.Add(13 * time.Minute)}
	e1, e2 := a1.events(), a2.events()
	c := noticeIDsUnique(t, cfg)
	for i, b := range [][]hindsight.Event{{e1[0]}, {e1[1]}, {e2[0]}, {e2[1]}} {
		if err := c.Apply(context.Background(), b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
}

// natsbus applies the siblings of a poison event one by one, each with
// Seq = envelope seq - 1 (what app.go passes to Apply). Two siblings that
// update one incident give two "updated" notices, named by the state each
// left the incident in, so the notices stream keeps both.
func TestEventsAppliedApartAreNoticedApart(t *testing.T) {
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	mk := func(name string, at time.Duration) hindsight.Event {
		return alertSpec{name: name, labels: map[string]string{"service": "checkout"}, starts: day.Add(at), received: day.Add(at)}.events()[0]
	}
	c := noticeIDsUnique(t, correlate.DefaultConfig())
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

// noticeIDsUnique returns a correlator over a fresh store whose notices
// fail the test when one has the Nats-Msg-Id of an earlier one (which
// JetStream's duplicate window would drop).
func noticeIDsUnique(t *testing.T, cfg correlate.Config) *correlate.Correlator {
	t.Helper()
	c, err := correlate.New(cfg, openStore(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]hindsight.Notice{}
	c.Notify(func(_ context.Context, ns []hindsight.Notice) {
		for _, n := range ns {
			id := natsbus.NoticeMsgID(n)
			if old, ok := seen[id]; ok {
				t.Errorf("%s notice of %s (seq %d) has the Nats-Msg-Id of an earlier one (seq %d): %q; JetStream drops it", n.Change, n.Incident, n.Seq, old.Seq, id)
			}
			seen[id] = n
		}
	})
	return c
}
