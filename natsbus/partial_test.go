package natsbus_test

import (
	"context"
	"errors"
	"fmt"
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
	calls := 0
	var diskBackAt time.Time
	applied := map[string]bool{}
	c := consume(t, b, natsbus.ConsumerOptions{Durable: "r"}, func(ds []natsbus.Delivery, parked []uint64) error {
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
	c.until(t, 15*time.Second, func(final bool) (bool, string) {
		switch {
		case len(c.parked) > 0:
			return false, fmt.Sprintf("parked %d events of a healthy envelope during a 5s storage outage (applied: %v)", len(c.parked), applied)
		case applied["1"] && applied["2"] && applied["3"]:
			return true, ""
		case final:
			return false, fmt.Sprintf("not applied: %v", applied)
		}
		return false, ""
	})
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
	okSeq := map[uint64]bool{}
	c := consume(t, b, natsbus.ConsumerOptions{Durable: "w", MaxAttempts: 3}, func(ds []natsbus.Delivery, parked []uint64) error {
		for _, d := range ds {
			if d.Event.ID == "poison" {
				return errors.New("cannot fold poison")
			}
		}
		if len(parked) == 0 {
			okSeq[ds[len(ds)-1].Seq] = true
		}
		return nil
	})
	c.until(t, 20*time.Second, func(final bool) (bool, string) {
		for seq := range okSeq {
			if seq >= 1 {
				return false, fmt.Sprintf("message 2 applied with sequence %d while message 1 was failing: a crash would skip message 1", seq)
			}
		}
		if len(c.parked) > 0 && len(okSeq) > 0 {
			return true, ""
		}
		if final {
			return false, fmt.Sprintf("parked %v, ok applied at %v", c.parked, okSeq)
		}
		return false, ""
	})
}
