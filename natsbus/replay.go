package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OpenExisting connects like Open but neither creates nor updates a
// stream: it finds the events stream as it is. It is for readers of the
// log of record (hindsight rebuild), which must not change its settings.
// It fails with a clear error when the stream does not exist.
func OpenExisting(ctx context.Context, o Options) (*Bus, error) {
	where := "NATS at " + o.URL
	if o.Server != nil {
		where = "the embedded nats-server"
	}
	nc, js, log, err := connect(o)
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, StreamName)
	if err != nil {
		nc.Close()
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return nil, fmt.Errorf("%s has no stream %s: there are no events to read (is it the NATS, or the data directory, Hindsight serves from?)", where, StreamName)
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return nil, fmt.Errorf("%s has JetStream disabled, so it holds no Hindsight events", where)
		}
		return nil, fmt.Errorf("look up stream %s on %s: %w", StreamName, where, err)
	}
	return &Bus{nc: nc, js: js, stream: stream, log: log}, nil
}

// ReplayOptions configures Replay.
type ReplayOptions struct {
	// From is the first stream sequence to read; 0 is the stream's first.
	From uint64
	// To is the last; 0 is the stream's last sequence when Replay starts,
	// so events published meanwhile are left for the live consumer.
	To uint64
	// Batch is the most events handed to fn at once (default 1000).
	Batch int
	// OnUndecodable is called for a message that is not an event (the
	// live consumer parks those); Replay skips it. May be nil.
	OnUndecodable func(seq uint64, err error)
	// StallTimeout is how long Replay waits for the next message before
	// it asks the stream whether more are coming (default 5s).
	StallTimeout time.Duration
}

// ReplayBatch is a run of the stream, in stream order.
type ReplayBatch struct {
	Deliveries []Delivery
	// Through is the stream sequence the batch reaches: every message up
	// to it has been handed over, skipped as undecodable, or was no
	// longer in the stream.
	Through uint64
	// First and Last are the range Replay reads.
	First, Last uint64
	// undecodable are the messages of the batch that are not events, for
	// OnUndecodable, called on fn's goroutine before fn.
	undecodable []undecodable
}

type undecodable struct {
	seq uint64
	err error
}

// Replay reads the events stream in order from o.From to o.To with an
// ordered consumer (ephemeral, unacknowledged, recreated by the client
// on a gap, so it leaves no state on the server and affects no durable
// consumer) and hands the events to fn in batches. It returns fn's
// first error, ctx's error, or nil once the last message is handed over.
// A stream with no messages in the range calls fn never.
//
// fn runs on a goroutine of its own, one batch at a time and in order,
// while the next batch is read and decoded: a rebuild's decoding and its
// folding use a core each.
func (b *Bus) Replay(ctx context.Context, o ReplayOptions, fn func(ReplayBatch) error) error {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 5 * time.Second
	}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	first, last := max(o.From, info.State.FirstSeq, 1), info.State.LastSeq
	if o.To != 0 {
		last = min(last, o.To)
	}
	if info.State.Msgs == 0 || first > last {
		return nil
	}
	cons, err := b.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    first,
	})
	if err != nil {
		return fmt.Errorf("create ordered consumer on %s: %w", StreamName, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(2*o.Batch, pullBytes))
	if err != nil {
		return fmt.Errorf("read %s: %w", StreamName, err)
	}
	defer iter.Stop()

	batches := make(chan ReplayBatch, 1)
	failed, finished := make(chan struct{}), make(chan struct{})
	var fnErr error
	go func() {
		defer close(finished)
		for b := range batches {
			for _, u := range b.undecodable {
				if o.OnUndecodable != nil {
					o.OnUndecodable(u.seq, u.err)
				}
			}
			if fnErr = fn(b); fnErr != nil {
				close(failed)
				for range batches {
				}
				return
			}
		}
	}()
	err = b.replay(ctx, iter, cons, first, last, o, func(batch ReplayBatch) error {
		select {
		case batches <- batch:
			return nil
		case <-failed:
			return errStopped
		}
	})
	close(batches)
	<-finished
	if fnErr != nil {
		return fnErr
	}
	return err
}

// errStopped ends reading when fn failed: Replay returns fn's error.
var errStopped = errors.New("replay stopped")

// replay reads [first, last] and hands batches to send, in order.
func (b *Bus) replay(ctx context.Context, iter jetstream.MessagesContext, cons jetstream.Consumer, first, last uint64, o ReplayOptions, send func(ReplayBatch) error) error {
	batch := ReplayBatch{First: first, Last: last, Through: first - 1}
	handed := batch.Through
	flush := func() error {
		if batch.Through == handed {
			return nil
		}
		handed = batch.Through
		err := send(batch)
		batch.Deliveries, batch.undecodable = make([]Delivery, 0, o.Batch), nil
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, o.StallTimeout)
		m, err := iter.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("read %s after sequence %d: %w", StreamName, batch.Through, err)
			}
			// Nothing for a while, and nothing waiting in the client:
			// are the messages still to come gone (expired or deleted
			// while we read)?
			ci, err := cons.Info(ctx)
			if err != nil {
				return fmt.Errorf("consumer on %s: %w", StreamName, err)
			}
			if ci.NumPending == 0 {
				return flush()
			}
			b.log.Warn("waiting for the stream", "stream", StreamName, "after_seq", batch.Through)
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message after sequence %d has no metadata: %w", batch.Through, err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			return flush()
		}
		if events, err := unpack(m.Data(), m.Headers()); err != nil {
			batch.undecodable = append(batch.undecodable, undecodable{seq, fmt.Errorf("cannot decode event: %w", err)})
		} else {
			for _, e := range events {
				batch.Deliveries = append(batch.Deliveries, Delivery{Event: e, Seq: seq, Delivered: meta.NumDelivered})
			}
		}
		batch.Through = seq
		// NumPending counts what the stream holds after this message: at
		// zero the rest of the range was deleted.
		if seq == last || meta.NumPending == 0 {
			return flush()
		}
		if len(batch.Deliveries) >= o.Batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}
