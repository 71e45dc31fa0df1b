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
	store := openStore(t)
	c, _ := correlate.New(cfg, store, nil, nil)
	seen := map[string]hindsight.Notice{}
	c.Notify(func(_ context.Context, ns []hindsight.Notice) {
		for _, n := range ns {
			id := natsbus.NoticeMsgID(n)
			if old, ok := seen[id]; ok {
				t.Errorf("notice %s (seq %d) has the Nats-Msg-Id of an earlier one (seq %d): %q; JetStream drops it", n.Change, n.Seq, old.Seq, id)
			}
			seen[id] = n
			t.Logf("seq %d: %s %s -> %s", n.Seq, n.Incident, n.Change, id)
		}
	})
	for i, b := range [][]hindsight.Event{{e1[0]}, {e1[1]}, {e2[0]}, {e2[1]}} {
		if err := c.Apply(context.Background(), b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
}
