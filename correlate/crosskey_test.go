package correlate_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
)

// One alert (no service/job label: keyed by Alertmanager's group key)
// reaches Hindsight through two Alertmanager routes, so its two copies
// have one event ID and two keys. The copy delivered second was received
// first (two ingest replicas), so it replaces the first: the store drops
// the event from key g1 and files it under g2. Key g1 is not refolded and
// its cache entry is not dropped.
func TestCrossKeyReplacementLeavesNoStaleCache(t *testing.T) {
	cfg := correlate.DefaultConfig()
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	x := alertSpec{name: "DiskFull", labels: map[string]string{"severity": "critical", "instance": "db-1"}, groupKey: "g1",
		starts: day, received: day.Add(2 * time.Minute)}
	xA := x.events()[0] // key g1, received 10:02
	x.groupKey, x.received = "g2", day.Add(time.Minute)
	xB := x.events()[0] // same ID, key g2, received 10:01: the copy that counts
	if xA.ID != xB.ID {
		t.Fatal("ids differ")
	}
	y := alertSpec{name: "DiskSlow", labels: map[string]string{"severity": "warning", "instance": "db-1"}, groupKey: "g1",
		starts: day.Add(time.Minute), received: day.Add(time.Minute), ends: day.Add(20 * time.Minute), resolvedReceived: day.Add(20 * time.Minute)}
	yEv := y.events()
	batches := [][]hindsight.Event{{xA, yEv[0]}, {xB}, {yEv[1]}}

	run := func(clear bool, batches [][]hindsight.Event) []byte {
		store := openStore(t)
		c, _ := correlate.New(cfg, store, nil, nil)
		for i, b := range batches {
			if clear {
				correlate.ClearCache(c)
			}
			if err := c.Apply(context.Background(), b, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		incs, _ := store.StartedBetween(time.Time{}, storeHorizon)
		return incidentsJSON(t, incs)
	}
	cached, uncached := run(false, batches), run(true, batches)
	var all []hindsight.Event
	for _, b := range batches {
		all = append(all, b...)
	}
	oneBatch := run(false, [][]hindsight.Event{all})
	if !bytes.Equal(cached, uncached) {
		t.Errorf("same batches, cache vs cache emptied before each Apply differ:\n%s", jsonDiff(cached, uncached))
	}
	if !bytes.Equal(cached, oneBatch) {
		t.Errorf("same stream, three batches vs one batch differ (with the cache):\n%s", jsonDiff(cached, oneBatch))
	}
	if !bytes.Equal(uncached, oneBatch) {
		t.Errorf("same stream, three batches vs one batch differ (without the cache):\n%s", jsonDiff(uncached, oneBatch))
	}
}
