package natsbus_test

import (
	"context"
	"errors"
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
			dups, err := b.Publish(ctx, []hindsight.Event{event("a"), event("b")})
			if err != nil || dups != 0 {
				t.Fatalf("first publish: dups=%d err=%v, want 0, nil", dups, err)
			}
			dups, err = b.Publish(ctx, []hindsight.Event{event("b"), event("c")})
			if err != nil || dups != 1 {
				t.Fatalf("second publish: dups=%d err=%v, want 1, nil", dups, err)
			}
			js, _ := jetstream.New(b.Conn())
			s, err := js.Stream(ctx, natsbus.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := s.Info(ctx)
			if got := info.State.Msgs; got != 3 {
				t.Fatalf("stream holds %d messages, want 3", got)
			}
			for seq, want := range map[uint64]string{1: "a", 2: "b", 3: "c"} {
				m, err := s.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Header.Get(jetstream.MsgIDHeader); got != want {
					t.Errorf("seq %d Nats-Msg-Id = %q, want %q", seq, got, want)
				}
			}
		})
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
	time.Sleep(200 * time.Millisecond)
	pending, err := b.Pending(ctx, "test")
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
// parked after MaxAttempts and counted; everything else flows.
func TestPoisonIsParkedAndTheStreamFlows(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := b.Publish(ctx, []hindsight.Event{event("1"), event("poison"), event("3")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	applied := map[string]bool{}
	var parked []uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(ctx, natsbus.ConsumerOptions{Durable: "p", MaxAttempts: 3,
			OnPoison: func(seq uint64, _ error) { mu.Lock(); parked = append(parked, seq); mu.Unlock() }},
			func(_ context.Context, ds []natsbus.Delivery) error {
				for _, d := range ds {
					if d.Event.ID == "poison" {
						return errors.New("cannot fold poison")
					}
				}
				mu.Lock()
				defer mu.Unlock()
				for _, d := range ds {
					applied[d.Event.ID] = true
				}
				return nil
			})
	}()
	// More events keep arriving behind the poison.
	time.Sleep(100 * time.Millisecond)
	if _, err := b.Publish(ctx, []hindsight.Event{event("4")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		ok := len(parked) == 1 && applied["1"] && applied["3"] && applied["4"]
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("parked %v, applied %v; want seq 2 parked and 1, 3, 4 applied", parked, applied)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if parked[0] != 2 || applied["poison"] {
		t.Fatalf("parked %v applied %v", parked, applied)
	}
	js, _ := jetstream.New(b.Conn())
	s, _ := js.Stream(ctx, natsbus.ParkedStreamName)
	m, err := s.GetMsg(ctx, 1)
	if err != nil || m.Header.Get("Hindsight-Original-Seq") != "2" || !strings.Contains(m.Header.Get("Hindsight-Error"), "poison") {
		t.Fatalf("parked message = %+v, %v", m, err)
	}
	cancel()
	<-done
}

// When every message fails (the disk is full), nothing is parked: the
// batch waits until it can be applied.
func TestSystemicFailureParksNothing(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Publish(ctx, []hindsight.Event{event("1"), event("2")})
	var mu sync.Mutex
	fails, parked := 0, 0
	applied := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Consume(ctx, natsbus.ConsumerOptions{Durable: "s", MaxAttempts: 2, OnPoison: func(uint64, error) { mu.Lock(); parked++; mu.Unlock() }},
			func(_ context.Context, ds []natsbus.Delivery) error {
				mu.Lock()
				defer mu.Unlock()
				if fails < 12 {
					fails++
					return errors.New("no space left on device")
				}
				applied += len(ds)
				return nil
			})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		a, p := applied, parked
		mu.Unlock()
		if p != 0 {
			t.Fatalf("parked %d messages on a systemic failure", p)
		}
		if a == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("applied %d after the disk recovered, want 2", a)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}
