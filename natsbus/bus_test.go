package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/internal/natstest"
	"github.com/hindsight-sre/hindsight/natsbus"
)

func event(id string) hindsight.Event {
	return hindsight.Event{ID: id, Kind: hindsight.KindNote, Source: hindsight.SourceNote,
		Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), Summary: "n " + id}
}

func open(t *testing.T, o natsbus.Options) *natsbus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestPublishSetsMsgIDAndDeduplicates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		external bool
	}{{"in-process", false}, {"over TCP", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.RunJetStream(t)
			o := natsbus.Options{Server: ns}
			if tc.external {
				o = natsbus.Options{URL: ns.ClientURL()}
			}
			b := open(t, o)
			ctx := context.Background()
			publish := func(want int, ids ...string) {
				t.Helper()
				var evs []hindsight.Event
				for _, id := range ids {
					evs = append(evs, event(id))
				}
				if dups, err := b.Publish(ctx, evs); err != nil || dups != want {
					t.Fatalf("publish %v: dups=%d err=%v, want %d, nil", ids, dups, err, want)
				}
			}
			// A lone event is its own message, named by its ID.
			publish(0, "a")
			publish(1, "a")
			// Several travel in one envelope; an identical repeat (a
			// notification sent again) collapses onto it.
			publish(0, "b", "c")
			publish(2, "b", "c")
			// A notification that overlaps an earlier one is stored; the
			// correlator collapses the copies of c by ID.
			publish(0, "c", "d")
			js, _ := jetstream.New(b.Conn())
			s, err := js.Stream(ctx, natsbus.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := s.Info(ctx)
			if got := info.State.Msgs; got != 3 {
				t.Fatalf("stream holds %d messages, want 3", got)
			}
			for seq, want := range map[uint64]string{1: "", 2: "2", 3: "2"} {
				m, err := s.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				id := m.Header.Get(jetstream.MsgIDHeader)
				if got := m.Header.Get(natsbus.HeaderEvents); got != want || (want == "" && id != "a") || (want != "" && !strings.HasPrefix(id, "env-")) {
					t.Errorf("seq %d: %s = %q, Nats-Msg-Id %q", seq, natsbus.HeaderEvents, got, id)
				}
			}
		})
	}
}

// A request too large for one message is split into envelopes; replay
// gives every event back, in order, each with its message's sequence,
// and a batch never splits a message.
func TestLargeRequestSplitsIntoEnvelopes(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	var evs []hindsight.Event
	for i := range 3000 {
		e := event(fmt.Sprintf("big-%04d", i))
		e.Summary = strings.Repeat("x", 300)
		evs = append(evs, e)
	}
	if _, err := b.Publish(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	r, err := replay(t, b, natsbus.ReplayOptions{Batch: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ids) != len(evs) {
		t.Fatalf("replayed %d events, want %d", len(r.ids), len(evs))
	}
	msgs := map[uint64]int{}
	for i, id := range r.ids {
		if id != evs[i].ID {
			t.Fatalf("event %d is %s, want %s", i, id, evs[i].ID)
		}
		msgs[r.seqs[i]]++
	}
	if len(msgs) < 4 {
		t.Errorf("%d messages for ~1 MB of events; want several envelopes of at most 256 KiB", len(msgs))
	}
	seen := map[uint64]int{}
	for _, rb := range r.batches {
		seen[rb.Through]++
	}
	for seq, n := range seen {
		if n > 1 {
			t.Errorf("message %d ends %d batches: a batch split it", seq, n)
		}
	}
}

func TestPublishWhenBrokerDownIsUnavailable(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{URL: ns.ClientURL()})
	ns.Shutdown()
	ns.WaitForShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := b.Publish(ctx, []hindsight.Event{event("x")})
	if !errors.Is(err, hindsight.ErrUnavailable) {
		t.Fatalf("publish with the broker down: err = %v, want ErrUnavailable", err)
	}
	if b.Ready() == nil {
		t.Fatal("Ready() = nil with the broker down")
	}
}

func TestConsumeAcksAfterApplyAndRetriesOnFailure(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := b.Publish(ctx, []hindsight.Event{event("1"), event("2"), event("3")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	failOnce := true
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(ctx, natsbus.ConsumerOptions{Durable: "test"}, func(_ context.Context, ds []natsbus.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if failOnce {
				failOnce = false
				return errors.New("disk full")
			}
			for _, d := range ds {
				seen[d.Event.ID]++
			}
			return nil
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied %v, want 1, 2, 3 after one failure", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The ack goes out after apply returns: poll for it.
	var pending uint64
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pending, err = b.Pending(ctx, "test")
		if (err == nil && pending == 0) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || pending != 0 {
		t.Fatalf("pending = %d, %v; want 0 once applied and acked", pending, err)
	}
	cancel()
	<-done
}

func TestStreamConfigDefaults(t *testing.T) {
	c := natsbus.StreamConfig(natsbus.Options{})
	if c.Storage != jetstream.FileStorage || c.Replicas != 1 || c.Duplicates != natsbus.DefaultDuplicateWindow || c.MaxAge != 0 {
		t.Fatalf("got %+v, want file storage, 1 replica, default duplicate window, no max age", c)
	}
}

// An event that always fails while the rest of the stream applies is
// parked after MaxAttempts and counted; everything else flows. In an
// envelope, only the poison event is parked; its siblings apply.
func TestPoisonIsParkedAndTheStreamFlows(t *testing.T) {
	for _, tc := range []struct {
		name     string
		envelope bool
		seq      uint64 // the poison's message
	}{{"a message per event", false, 2}, {"one envelope", true, 1}} {
		t.Run(tc.name, func(t *testing.T) { poison(t, tc.envelope, tc.seq) })
	}
}

func poison(t *testing.T, envelope bool, wantSeq uint64) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := []hindsight.Event{event("1"), event("poison"), event("3")}
	if envelope {
		if _, err := b.Publish(ctx, evs); err != nil {
			t.Fatal(err)
		}
	} else {
		for _, e := range evs {
			if _, err := b.Publish(ctx, []hindsight.Event{e}); err != nil {
				t.Fatal(err)
			}
		}
	}
	applied := map[string]bool{}
	c := consume(t, b, natsbus.ConsumerOptions{Durable: "p", MaxAttempts: 3}, func(ds []natsbus.Delivery, parked []uint64) error {
		for _, d := range ds {
			if d.Event.ID == "poison" {
				return errors.New("cannot fold poison")
			}
		}
		for _, d := range ds {
			applied[d.Event.ID] = true
		}
		return nil
	})
	// More events keep arriving behind the poison.
	time.Sleep(100 * time.Millisecond)
	if _, err := b.Publish(ctx, []hindsight.Event{event("4")}); err != nil {
		t.Fatal(err)
	}
	c.until(t, 20*time.Second, func(final bool) (bool, string) {
		switch {
		case len(c.parked) == 1 && applied["1"] && applied["3"] && applied["4"]:
			if c.parked[0] != wantSeq || applied["poison"] {
				return false, fmt.Sprintf("parked %v applied %v", c.parked, applied)
			}
			return true, ""
		case final:
			return false, fmt.Sprintf("parked %v, applied %v; want seq %d parked and 1, 3, 4 applied", c.parked, applied, wantSeq)
		}
		return false, ""
	})
	js, _ := jetstream.New(b.Conn())
	s, _ := js.Stream(ctx, natsbus.ParkedStreamName)
	m, err := s.GetMsg(ctx, 1)
	if err != nil || m.Header.Get("Hindsight-Original-Seq") != fmt.Sprint(wantSeq) || !strings.Contains(m.Header.Get("Hindsight-Error"), "poison") {
		t.Fatalf("parked message = %+v, %v", m, err)
	}
	// What is parked is the poison alone, as an event.
	var e hindsight.Event
	if err := json.Unmarshal(m.Data, &e); err != nil || e.ID != "poison" {
		t.Fatalf("parked %s: %v", m.Data, err)
	}
}

// When every message fails (the disk is full), nothing is parked: the
// batch waits until it can be applied.
func TestSystemicFailureParksNothing(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Publish(ctx, []hindsight.Event{event("1"), event("2")})
	fails, applied := 0, 0
	c := consume(t, b, natsbus.ConsumerOptions{Durable: "s", MaxAttempts: 2}, func(ds []natsbus.Delivery, parked []uint64) error {
		if fails < 12 {
			fails++
			return errors.New("no space left on device")
		}
		applied += len(ds)
		return nil
	})
	c.until(t, 30*time.Second, func(final bool) (bool, string) {
		switch p := len(c.parked); {
		case p != 0:
			return false, fmt.Sprintf("parked %d messages on a systemic failure", p)
		case applied == 2:
			return true, ""
		case final:
			return false, fmt.Sprintf("applied %d after the disk recovered, want 2", applied)
		}
		return false, ""
	})
}
