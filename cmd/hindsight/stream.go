package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// What rebuild and replay share: how they reach the events stream, and
// how they fold it through correlators, batch by batch, with the same
// Correlator.Apply the live consumer runs.

// streamSource says where the events stream is read from: an external
// NATS (or serve's embedded one, through <data-dir>/nats.url) when url
// is set, else the data directory's JetStream store, with an embedded
// nats-server of our own. The caller makes sure no serve runs on it.
type streamSource struct {
	url, token string
	dataDir    string
	name       string // client name shown by the server
}

// openStream connects to the events stream without changing it and
// returns the bus and what closes it (and our nats-server, if any); that
// may be called more than once.
func openStream(ctx context.Context, src streamSource, log *slog.Logger) (*natsbus.Bus, func(), error) {
	bo := natsbus.Options{URL: src.url, Token: src.token, Name: src.name, Logger: log.With("component", "nats")}
	stop := func() {}
	if src.url == "" {
		storeDir := filepath.Join(src.dataDir, "jetstream")
		if _, err := os.Stat(storeDir); err != nil {
			return nil, nil, fmt.Errorf("no JetStream store at %s, so no events to read: is --data-dir the directory serve uses? (with an external NATS, pass --nats-url)", storeDir)
		}
		ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: storeDir, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		stop = func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
		bo.Server = ns
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	bus, err := natsbus.OpenExisting(octx, bo)
	cancel()
	if err != nil {
		stop()
		return nil, nil, err
	}
	var once sync.Once
	return bus, func() { once.Do(func() { bus.Close(); stop() }) }, nil
}

// foldOptions configure foldStream.
type foldOptions struct {
	batch int
	// progressEvery is how often progress is printed.
	progressEvery time.Duration
	// into names what the fold writes, for the first line.
	into string
	// keep selects the events to fold; nil folds every one.
	keep func(*hindsight.Event) bool
	say  func(format string, args ...any)
	log  *slog.Logger
}

// foldStats are what foldStream read and folded.
type foldStats struct {
	read    int // events read from the stream
	dropped int // read, and not kept
	skipped int // undecodable, or that a correlator cannot fold
	// first and last are the sequences the stream held when the fold
	// began; through is the last one folded.
	first, last, through uint64
}

// foldStream reads the stream from its first message to the last it held
// when it began, and folds every batch into each correlator in turn,
// committing each batch with the batch's last sequence. It returns at the
// first error, with the stats so far.
func foldStream(ctx context.Context, bus *natsbus.Bus, o foldOptions, cs ...*correlate.Correlator) (foldStats, error) {
	started := time.Now()
	lastPrint := started
	var st foldStats
	err := bus.Replay(ctx, natsbus.ReplayOptions{Batch: o.batch, OnUndecodable: func(seq uint64, err error) {
		st.skipped++
		o.log.Warn("skipped a message that is not an event (the correlator parks it too)", "seq", seq, "err", err)
	}}, func(rb natsbus.ReplayBatch) error {
		if st.first == 0 {
			st.first, st.last = rb.First, rb.Last
			if st.first > 1 {
				o.say("the stream starts at sequence %d: earlier events expired (nats.max_age) and are not folded", st.first)
			}
			o.say("folding sequences %d to %d into %s", st.first, st.last, o.into)
		}
		st.read += len(rb.Deliveries)
		if o.keep != nil {
			kept := make([]natsbus.Delivery, 0, len(rb.Deliveries))
			for _, d := range rb.Deliveries {
				if o.keep(&d.Event) {
					kept = append(kept, d)
				}
			}
			st.dropped += len(rb.Deliveries) - len(kept)
			rb.Deliveries = kept
		}
		fewest := len(rb.Deliveries)
		for _, c := range cs {
			n, err := apply(ctx, c, rb, o.log)
			if err != nil {
				return err
			}
			fewest = min(fewest, n)
		}
		st.skipped += len(rb.Deliveries) - fewest
		st.through = rb.Through
		if now := time.Now(); now.Sub(lastPrint) >= o.progressEvery {
			lastPrint = now
			el := now.Sub(started).Seconds()
			o.say("%d of %d (%.0f%%) in %.0fs, %.0f events/s", rb.Through-st.first+1, st.last-st.first+1,
				100*float64(rb.Through-st.first+1)/float64(st.last-st.first+1), el, float64(st.read)/el)
		}
		return nil
	})
	return st, err
}

// apply folds a batch and commits it with the batch's last sequence, and
// returns how many events it folded. Events the correlator can never
// fold are skipped with a warning, as the live consumer parks them:
// those that fail validation, and those the fold panics on (found by
// trying the batch's events one by one). Any other failure is the
// store's, and ends the fold.
func apply(ctx context.Context, c *correlate.Correlator, rb natsbus.ReplayBatch, log *slog.Logger) (int, error) {
	events := make([]hindsight.Event, 0, len(rb.Deliveries))
	seqs := make([]uint64, 0, len(rb.Deliveries))
	for _, d := range rb.Deliveries {
		if err := d.Event.Validate(); err != nil {
			log.Warn("skipped an event that cannot be folded (the correlator parks it too)", "seq", d.Seq, "err", err)
			continue
		}
		events, seqs = append(events, d.Event), append(seqs, d.Seq)
	}
	err := safeApply(ctx, c, events, rb.Through)
	var p *panicError
	if !errors.As(err, &p) {
		return len(events), err
	}
	folded := 0
	for i := range events {
		err := safeApply(ctx, c, events[i:i+1], 0)
		if errors.As(err, &p) {
			log.Warn("skipped an event the fold fails on (the correlator parks it too)", "seq", seqs[i], "id", events[i].ID, "err", err)
			continue
		}
		if err != nil {
			return folded, err
		}
		folded++
	}
	return folded, safeApply(ctx, c, nil, rb.Through)
}

type panicError struct{ v any }

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

func safeApply(ctx context.Context, c *correlate.Correlator, events []hindsight.Event, seq uint64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{r}
		}
	}()
	return c.Apply(ctx, events, seq)
}
