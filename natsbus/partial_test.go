package natsbus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/internal/natstest"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// The disk fills up while an envelope is being applied event by event:
// event 1 commits, 2 and 3 fail, and so does everything after for a few
// seconds (a systemic failure). Nothing is parked: only a round in which
// some of the envelope applied counts an attempt against the rest.
func TestPartialEnvelopeIsNotParkedOnSystemicFailure(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := b.Publish(ctx, []hindsight.Event{event("1"), event("2"), event("3")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := 0
	var diskBackAt time.Time
	applied := map[string]bool{}
	parked := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(ctx, natsbus.ConsumerOptions{Durable: "r", OnPoison: func(uint64, error) { mu.Lock(); parked++; mu.Unlock() }},
			func(_ context.Context, ds []natsbus.Delivery) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				switch {
				case calls <= 2:
					return errors.New("no space left on device") // the whole batch, then the whole envelope
				case calls == 3 && len(ds) == 1 && ds[0].Event.ID == "1":
					diskBackAt = time.Now().Add(5 * time.Second) // the small commit fit; then the disk is full
				case time.Now().Before(diskBackAt):
					return errors.New("no space left on device")
				}
				for _, d := range ds {
					applied[d.Event.ID] = true
				}
				return nil
			})
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		ok := applied["1"] && applied["2"] && applied["3"]
		p := parked
		mu.Unlock()
		if p > 0 {
			t.Fatalf("parked %d events of a healthy envelope during a 5s storage outage (applied: %v)", p, applied)
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not applied: %v", applied)
}

// While a message keeps failing, the messages after it apply, but the
// sequence they commit stays below it: a crash then resumes at the
// failing message rather than after it, so it is applied or parked, never
// skipped.
func TestWatermarkStaysBelowAFailingMessage(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, id := range []string{"poison", "ok"} {
		if _, err := b.Publish(ctx, []hindsight.Event{event(id)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	okSeq := map[uint64]bool{}
	parked := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(ctx, natsbus.ConsumerOptions{Durable: "w", MaxAttempts: 3,
			OnPoison: func(uint64, error) { mu.Lock(); parked = true; mu.Unlock() }},
			func(_ context.Context, ds []natsbus.Delivery) error {
				for _, d := range ds {
					if d.Event.ID == "poison" {
						return errors.New("cannot fold poison")
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if !parked {
					okSeq[ds[len(ds)-1].Seq] = true
				}
				return nil
			})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		p, seqs := parked, len(okSeq)
		mu.Unlock()
		if p && seqs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("parked %v, ok applied at %v", p, okSeq)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for seq := range okSeq {
		if seq >= 1 {
			t.Fatalf("message 2 applied with sequence %d while message 1 was failing: a crash would skip message 1", seq)
		}
	}
	cancel()
	<-done
}
