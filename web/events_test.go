package web

import (
	"log/slog"
	"testing"

	"github.com/hindsight-sre/hindsight"
)

// A stream that falls a buffer behind is dropped; the others go on.
func TestBrokerDropsSlowStreams(t *testing.T) {
	b := newBroker(Options{ClientBuffer: 2, Logger: slog.New(slog.DiscardHandler)})
	slow, _ := b.add()
	fast, _ := b.add()
	for i := range 3 {
		b.dispatch(hindsight.Notice{Incident: "inc-1", Seq: uint64(i)})
		if n := <-fast; n.Seq != uint64(i) {
			t.Fatalf("fast stream got seq %d, want %d", n.Seq, i)
		}
	}
	got := 0
	for range slow {
		got++
	}
	if got != 2 {
		t.Errorf("slow stream got %d notices before it was dropped, want its buffer's 2", got)
	}
	b.dispatch(hindsight.Notice{Incident: "inc-1", Seq: 9})
	if n, open := <-fast; !open || n.Seq != 9 {
		t.Errorf("fast stream after the drop: %v, open %v; want seq 9", n, open)
	}
	b.remove(slow) // the handler's deferred remove of a dropped stream is harmless
	b.remove(fast)
}
