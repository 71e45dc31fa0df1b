package correlate_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight/correlate"
)

// Same batches through two correlators: one with its cache, one whose
// cache is emptied before every Apply. The stored incidents must match
// byte for byte after every batch.
func TestCacheMatchesTheStore(t *testing.T) {
	cfg := propertyConfig(t)
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			events := shuffled(genStream(cfg, rng, 40), rng)
			sa, sb := openStore(t), openStore(t)
			ca, _ := correlate.New(cfg, sa, nil, nil)
			cb, _ := correlate.New(cfg, sb, nil, nil)
			var seq uint64
			for len(events) > 0 {
				n := min(len(events), 1+rng.IntN(12))
				seq += uint64(n)
				if err := ca.Apply(context.Background(), events[:n], seq); err != nil {
					t.Fatal(err)
				}
				correlate.ClearCache(cb)
				if err := cb.Apply(context.Background(), events[:n], seq); err != nil {
					t.Fatal(err)
				}
				events = events[n:]
				ra, _ := sa.StartedBetween(time.Time{}, storeHorizon)
				rb, _ := sb.StartedBetween(time.Time{}, storeHorizon)
				if a, b := incidentsJSON(t, ra), incidentsJSON(t, rb); !bytes.Equal(a, b) {
					t.Fatalf("after batch ending at %d: cached and uncached differ:\n%s", seq, jsonDiff(a, b))
				}
			}
		})
	}
}
