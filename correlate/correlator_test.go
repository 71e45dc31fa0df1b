package correlate_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

func newCorrelator(t *testing.T) (*correlate.Correlator, *boltstore.Store, *prometheus.Registry) {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	reg := prometheus.NewRegistry()
	c, err := correlate.New(correlate.DefaultConfig(), s, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return c, s, reg
}

func TestCorrelatorDeduplicatesAndRedirects(t *testing.T) {
	c, s, reg := newCorrelator(t)
	ctx := context.Background()
	// Two incidents, then a late alert bridging them, then every event again.
	batches := [][]hindsight.Event{
		{firing("a", "X", 0, 0), resolved("a", "X", 0, 5)},
		{firing("b", "Y", 30, 30), firing("b", "Y", 30, 31)},
		{resolved("b", "Y", 30, 35)},
		{firing("z", "Early", -3, 40), resolved("z", "Early", -3, 32)},
	}
	var seq uint64
	var all []hindsight.Event
	ids := map[int][]string{}
	for i, b := range batches {
		seq += uint64(len(b))
		if err := c.Apply(ctx, b, seq); err != nil {
			t.Fatal(err)
		}
		list, _, _ := s.List(ctx, boltstore.ListOptions{})
		for _, inc := range list {
			ids[i] = append(ids[i], inc.ID)
		}
		all = append(all, b...)
	}
	if len(ids[2]) != 2 || len(ids[3]) != 1 {
		t.Fatalf("incidents per step = %v, want 2 before the bridge and 1 after", ids)
	}
	for _, old := range ids[2] {
		inc, err := s.Incident(ctx, old)
		if err != nil || inc.ID != ids[3][0] {
			t.Fatalf("old id %s = %v, %v; want redirect to %s", old, inc, err, ids[3][0])
		}
	}
	before, _ := s.Incident(ctx, ids[3][0])
	if err := c.Apply(ctx, all, seq+1); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Incident(ctx, ids[3][0])
	if dump(before) != dump(after) {
		t.Fatalf("redelivering every event changed the incident:\n%s\n%s", dump(before), dump(after))
	}
	if len(after.Timeline) != 6 {
		t.Fatalf("timeline has %d entries, want 6 (3 alerts fired and resolved)", len(after.Timeline))
	}
	if n := testutil.CollectAndCount(reg, "hindsight_time_to_resolve_seconds"); n == 0 {
		t.Fatal("time to resolve was never observed")
	}
	// b fired twice in one batch (1), then all 7 events again (7).
	want := `
# HELP hindsight_correlate_events_deduplicated_total Events the correlator already had (redeliveries and repeats beyond JetStream's duplicate window).
# TYPE hindsight_correlate_events_deduplicated_total counter
hindsight_correlate_events_deduplicated_total 8
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hindsight_correlate_events_deduplicated_total"); err != nil {
		t.Fatal(err)
	}
}

// Two replicas that cut the same stream into different batches name each
// opening, resolution, reopening and merge alike, so the notices stream
// keeps one message for each.
func TestNoticeMarksDoNotDependOnBatches(t *testing.T) {
	stream := []hindsight.Event{
		firing("a", "X", 0, 0), resolved("a", "X", 0, 5),
		firing("a", "X", 8, 8), resolved("a", "X", 8, 12),
		firing("b", "Y", 40, 40), resolved("b", "Y", 40, 45),
		firing("c", "Z", 20, 46), resolved("c", "Z", 20, 47),
	}
	marks := func(cut int) map[string]bool {
		c, _, _ := newCorrelator(t)
		got := map[string]bool{}
		c.Notify(func(_ context.Context, ns []hindsight.Notice) {
			for _, n := range ns {
				if n.Change != hindsight.NoticeUpdated {
					if n.Mark == "" {
						t.Errorf("%s notice of %s has no mark", n.Change, n.Incident)
					}
					got[n.Incident+"|"+n.Change+"|"+n.Mark] = true
				}
			}
		})
		for i := 0; i < len(stream); i += cut {
			end := min(i+cut, len(stream))
			if err := c.Apply(context.Background(), stream[i:end], uint64(end)); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	// The replica that folds event by event sees every intermediate
	// state; the other sees fewer (an alert that fired and resolved in
	// one batch opens an incident already resolved), but the states both
	// reach, each resolution and merge, have the same ID in both.
	one, two := marks(1), marks(3)
	for id := range two {
		if !strings.Contains(id, "|resolved|") && !strings.Contains(id, "|merged|") {
			continue
		}
		if !one[id] {
			t.Errorf("notice %s of the replica folding by threes has another ID in the one folding one by one", id)
		}
	}
	var resolvedAndMerged int
	for id := range two {
		if strings.Contains(id, "|resolved|") || strings.Contains(id, "|merged|") {
			resolvedAndMerged++
		}
	}
	if resolvedAndMerged < 2 {
		t.Fatalf("%d notices: %v", len(two), two)
	}
}
