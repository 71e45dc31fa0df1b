package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/internal/eventgen"
	"github.com/hindsight-sre/hindsight/internal/natstest"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// publishN publishes n events, each its own message, so that sequences
// and events correspond one to one.
func publishN(t *testing.T, b *natsbus.Bus, prefix string, n int) {
	t.Helper()
	for i := range n {
		if _, err := b.Publish(context.Background(), []hindsight.Event{event(fmt.Sprintf("%s%d", prefix, i))}); err != nil {
			t.Fatal(err)
		}
	}
}

type replayed struct {
	seqs    []uint64
	ids     []string
	batches []natsbus.ReplayBatch
}

func replay(t *testing.T, b *natsbus.Bus, o natsbus.ReplayOptions) (replayed, error) {
	t.Helper()
	var r replayed
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := b.Replay(ctx, o, func(rb natsbus.ReplayBatch) error {
		for _, d := range rb.Deliveries {
			r.seqs = append(r.seqs, d.Seq)
			r.ids = append(r.ids, d.Event.ID)
		}
		rb.Deliveries = nil
		r.batches = append(r.batches, rb)
		return nil
	})
	return r, err
}

func TestReplayReadsTheStreamInOrderAndStopsAtItsEnd(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx := context.Background()
	publishN(t, b, "e", 2500)
	// A message that is no event, and one deleted from the stream.
	if _, err := b.Conn().Request(natsbus.SubjectPrefix+"note", []byte("{not json"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(b.Conn())
	s, _ := js.Stream(ctx, natsbus.StreamName)
	if err := s.DeleteMsg(ctx, 1200); err != nil {
		t.Fatal(err)
	}
	publishN(t, b, "f", 10)

	var undecodable []uint64
	r, err := replay(t, b, natsbus.ReplayOptions{Batch: 1000, OnUndecodable: func(seq uint64, _ error) { undecodable = append(undecodable, seq) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.seqs) != 2509 || len(undecodable) != 1 || undecodable[0] != 2501 {
		t.Fatalf("got %d events and undecodable %v; want 2509 and [2501]", len(r.seqs), undecodable)
	}
	for i := 1; i < len(r.seqs); i++ {
		if r.seqs[i] <= r.seqs[i-1] || r.seqs[i] == 1200 {
			t.Fatalf("sequences out of order or deleted one delivered: ...%v", r.seqs[max(0, i-2):i+1])
		}
	}
	var throughs []uint64
	for _, rb := range r.batches {
		throughs = append(throughs, rb.Through)
		if rb.First != 1 || rb.Last != 2511 {
			t.Fatalf("batch range %d-%d, want 1-2511", rb.First, rb.Last)
		}
	}
	if got, want := fmt.Sprint(throughs), "[1000 2001 2511]"; got != want {
		t.Fatalf("batches reach %s, want %s", got, want)
	}

	// A range.
	r, err = replay(t, b, natsbus.ReplayOptions{From: 2490, To: 2505, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(r.seqs), "[2490 2491 2492 2493 2494 2495 2496 2497 2498 2499 2500 2502 2503 2504 2505]"; got != want {
		t.Fatalf("range 2490-2505 gave %s, want %s", got, want)
	}
	if last := r.batches[len(r.batches)-1]; last.Through != 2505 {
		t.Fatalf("last batch reaches %d, want 2505", last.Through)
	}
}

// Replay reads what the stream held when it started, even while more
// arrives, and returns when the rest of its range was deleted meanwhile.
func TestReplayStopsAtTheSnapshot(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{Server: ns})
	ctx := context.Background()
	publishN(t, b, "e", 300)
	more := 0
	err := b.Replay(ctx, natsbus.ReplayOptions{Batch: 100}, func(rb natsbus.ReplayBatch) error {
		more += len(rb.Deliveries)
		if rb.Through == 100 {
			publishN(t, b, "late", 50)
		}
		return nil
	})
	if err != nil || more != 300 {
		t.Fatalf("replayed %d, %v; want the 300 present at the start", more, err)
	}

	js, _ := jetstream.New(b.Conn())
	s, _ := js.Stream(ctx, natsbus.StreamName)
	n := 0
	err = b.Replay(ctx, natsbus.ReplayOptions{Batch: 10, StallTimeout: 200 * time.Millisecond}, func(rb natsbus.ReplayBatch) error {
		n += len(rb.Deliveries)
		if n == 10 {
			for seq := uint64(11); seq <= 350; seq++ {
				if err := s.DeleteMsg(ctx, seq); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil || n > 300 {
		t.Fatalf("replay with its tail deleted: %d events, %v", n, err)
	}

	// An empty stream calls fn never; an error from fn ends the replay.
	empty := open(t, natsbus.Options{Server: natstest.RunJetStream(t)})
	if err := empty.Replay(ctx, natsbus.ReplayOptions{}, func(natsbus.ReplayBatch) error {
		t.Fatal("fn called on an empty stream")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	publishN(t, empty, "x", 5)
	if err := empty.Replay(ctx, natsbus.ReplayOptions{Batch: 2}, func(natsbus.ReplayBatch) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Replay = %v, want fn's error", err)
	}
}

// OpenExisting reads the stream as it is: it creates none and changes no
// setting.
func TestOpenExistingChangesNothing(t *testing.T) {
	ns := natstest.RunJetStream(t)
	ctx := context.Background()
	_, err := natsbus.OpenExisting(ctx, natsbus.Options{Server: ns})
	if err == nil || !strings.Contains(err.Error(), "no stream "+natsbus.StreamName) {
		t.Fatalf("OpenExisting without the stream: %v, want it to say there is no stream", err)
	}
	open(t, natsbus.Options{Server: ns, MaxAge: 48 * time.Hour})
	b, err := natsbus.OpenExisting(ctx, natsbus.Options{URL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	js, _ := jetstream.New(b.Conn())
	s, _ := js.Stream(ctx, natsbus.StreamName)
	info, _ := s.Info(ctx)
	if info.Config.MaxAge != 48*time.Hour {
		t.Fatalf("max age = %s after OpenExisting, want 48h as configured", info.Config.MaxAge)
	}
	if _, err := js.Stream(ctx, natsbus.ParkedStreamName); err != nil {
		t.Fatal(err)
	}
}

// A backlog of full envelopes (256 KiB each, as a storm's large
// notifications make): reading it must ask the server for no more than
// the client can take, or the server cuts the connection as a slow
// consumer while the folding lags, again and again (a rebuild and a
// catching-up correlator did, and the cut lost incident notices).
func TestReplayOfLargeEnvelopesKeepsTheConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 100 MB")
	}
	// Over TCP, as `hindsight rebuild` and an external NATS read: the
	// in-process pipe never showed the cut.
	ns := natstest.RunJetStream(t)
	b := open(t, natsbus.Options{URL: ns.ClientURL()})
	ctx := context.Background()
	evs := eventgen.Events(100_000, 50)
	for i := 0; i < len(evs); i += 1000 {
		if _, err := b.Publish(ctx, evs[i:min(i+1000, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	err := b.Replay(ctx, natsbus.ReplayOptions{Batch: 10000}, func(rb natsbus.ReplayBatch) error {
		for _, d := range rb.Deliveries {
			if d.Event.ID != evs[n].ID {
				t.Fatalf("delivery %d is %s, want %s", n, d.Event.ID, evs[n].ID)
			}
			n++
		}
		time.Sleep(100 * time.Millisecond) // folding, slower than reading
		return nil
	})
	if err != nil || n != len(evs) {
		t.Fatalf("replay: %d of %d events, %v", n, len(evs), err)
	}
	if r := b.Conn().Stats().Reconnects; r != 0 {
		t.Fatalf("the connection was cut %d times while replaying", r)
	}
}
