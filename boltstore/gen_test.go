package boltstore_test

import (
	"context"
	"testing"

	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/internal/eventgen"
)

// populate folds n generated events into a new state file at path, in
// batches as the live correlator commits them.
func populate(tb testing.TB, path string, n, services, batch int) {
	tb.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	c, err := correlate.New(correlate.DefaultConfig(), s, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	evs := eventgen.Events(n, services)
	for i := 0; i < len(evs); i += batch {
		j := min(i+batch, len(evs))
		if err := c.Apply(context.Background(), evs[i:j], uint64(j)); err != nil {
			tb.Fatal(err)
		}
	}
}
