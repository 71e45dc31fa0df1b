package natsbus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight/natsbus"
)

// consuming is a Consume running for a test: apply runs under mu, as do
// the checks of until, so they share the test's state without races.
type consuming struct {
	mu     sync.Mutex
	parked []uint64 // sequences OnPoison reported
}

// consume runs b.Consume with o and apply until the test ends; apply gets
// the sequences parked so far.
func consume(t *testing.T, b *natsbus.Bus, o natsbus.ConsumerOptions, apply func(ds []natsbus.Delivery, parked []uint64) error) *consuming {
	t.Helper()
	c := &consuming{}
	ctx, cancel := context.WithCancel(context.Background())
	o.OnPoison = func(seq uint64, _ error) { c.mu.Lock(); c.parked = append(c.parked, seq); c.mu.Unlock() }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(ctx, o, func(_ context.Context, ds []natsbus.Delivery) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			return apply(ds, c.parked)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// until polls check (under mu) until it says done. A failure it reports
// ends the test at once; at the deadline, check is asked a last time
// (final) for what is missing.
func (c *consuming) until(t *testing.T, limit time.Duration, check func(final bool) (done bool, failure string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		final := time.Now().After(deadline)
		c.mu.Lock()
		done, failure := check(final)
		c.mu.Unlock()
		switch {
		case done:
			return
		case failure != "" || final:
			t.Fatal(failure)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
