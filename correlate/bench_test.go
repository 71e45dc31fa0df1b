package correlate_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/internal/eventgen"
)

// BenchmarkApply folds a generated stream (50 services) through the
// Correlator into a real bbolt file in batches of 10,000, as rebuild
// does; it reports events/s. The stream's size is the sub-benchmark name.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{20_000, 100_000} {
		evs := eventgen.Events(n, 50)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				store, err := boltstore.Open(filepath.Join(b.TempDir(), "hindsight.db"))
				if err != nil {
					b.Fatal(err)
				}
				c, err := correlate.New(correlate.DefaultConfig(), store, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < len(evs); i += 10_000 {
					if err := c.Apply(context.Background(), evs[i:min(i+10_000, len(evs))], uint64(i+1)); err != nil {
						b.Fatal(err)
					}
				}
				store.Close()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkFoldStream is the pure fold of a whole stream in memory.
func BenchmarkFoldStream(b *testing.B) {
	evs := eventgen.Events(20_000, 50)
	cfg := correlate.DefaultConfig()
	for b.Loop() {
		cfg.FoldStream(evs)
	}
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
}
