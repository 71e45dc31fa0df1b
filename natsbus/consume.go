package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight"
)

// Delivery is one event taken from the stream.
type Delivery struct {
	Event hindsight.Event
	// Seq is the message's stream sequence; Delivered counts deliveries
	// of it to this consumer (1 the first time).
	Seq       uint64
	Delivered uint64
}

// ConsumerOptions configures Consume.
type ConsumerOptions struct {
	// Durable names the consumer; its position survives restarts.
	Durable string
	// Batch is the most messages handed to apply at once (default 256).
	Batch int
	// AckWait is how long JetStream waits for an ack before redelivering
	// (default 1m).
	AckWait time.Duration
	// StartAfter is the stream sequence up to which the caller has already
	// applied every event (its own record, committed with its state). The
	// consumer is recreated to deliver from the next one, so a restart
	// after a crash resumes at once instead of waiting out the AckWait of
	// messages the dead process held.
	StartAfter uint64
	// OnPoison is called for a message that can never be applied (it does
	// not decode); the message is terminated so it does not block the
	// stream. May be nil.
	OnPoison func(seq uint64, err error)
}

// Consume delivers the stream's events to apply in batches, in stream
// order, and acknowledges a batch only after apply returned nil. When
// apply fails (local storage trouble), the same batch is retried with
// backoff, never skipped, so applied events always form a prefix of the
// stream and the caller's last applied sequence is an exact watermark.
// Consume returns when ctx is done.
func (b *Bus) Consume(ctx context.Context, o ConsumerOptions, apply func(context.Context, []Delivery) error) error {
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.AckWait <= 0 {
		o.AckWait = time.Minute
	}
	// The caller's watermark, not the consumer's state, says where to
	// resume: drop the old consumer (its unacked deliveries belonged to a
	// process that is gone) and start after the watermark.
	if err := b.js.DeleteConsumer(ctx, StreamName, o.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reset consumer %s: %w", o.Durable, err)
	}
	deliver, start := jetstream.DeliverAllPolicy, uint64(0)
	if o.StartAfter > 0 {
		deliver, start = jetstream.DeliverByStartSequencePolicy, o.StartAfter+1
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:       o.Durable,
		Description:   "Hindsight correlator: folds events into incidents",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: deliver,
		OptStartSeq:   start,
		FilterSubject: SubjectPrefix + ">",
		AckWait:       o.AckWait,
		// Never give up on an event: a failure to apply is a failure of
		// local storage (disk full, say), and skipping would lose it.
		MaxDeliver:    -1,
		MaxAckPending: 4 * o.Batch,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", o.Durable, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(2 * o.Batch))
	if err != nil {
		return fmt.Errorf("consume %s: %w", o.Durable, err)
	}
	msgs := make(chan jetstream.Msg, o.Batch)
	go func() {
		defer close(msgs)
		for {
			m, err := iter.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				b.log.Warn("waiting for events", "consumer", o.Durable, "err", err)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			msgs <- m
		}
	}()
	defer func() {
		iter.Stop()
		for range msgs { // unblock the reader; unacked messages are redelivered
		}
	}()

	batch := make([]jetstream.Msg, 0, o.Batch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			batch = append(batch, m)
		}
	drain:
		for len(batch) < o.Batch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		b.handle(ctx, o, batch, apply)
	}
}

func (b *Bus) handle(ctx context.Context, o ConsumerOptions, batch []jetstream.Msg, apply func(context.Context, []Delivery) error) {
	ds := make([]Delivery, 0, len(batch))
	good := batch[:0:0]
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			b.log.Error("message without metadata", "err", err)
			_ = m.Term()
			continue
		}
		var d Delivery
		d.Seq, d.Delivered = meta.Sequence.Stream, meta.NumDelivered
		if err := json.Unmarshal(m.Data(), &d.Event); err != nil || d.Event.ID == "" {
			if err == nil {
				err = errors.New("event has no id")
			}
			b.log.Error("poison message: cannot decode event, terminating it", "seq", d.Seq, "err", err)
			if o.OnPoison != nil {
				o.OnPoison(d.Seq, err)
			}
			_ = m.Term()
			continue
		}
		ds = append(ds, d)
		good = append(good, m)
	}
	if len(ds) == 0 {
		return
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := apply(ctx, ds)
		if err == nil {
			break
		}
		b.log.Error("apply events failed; retrying the same batch", "count", len(ds), "first_seq", ds[0].Seq, "retry_in", wait, "err", err)
		for _, m := range good {
			_ = m.InProgress() // keep JetStream from redelivering meanwhile
		}
		select {
		case <-ctx.Done():
			return // not acked: the next start resumes from the watermark
		case <-time.After(wait):
		}
	}
	for _, m := range good {
		if err := m.Ack(); err != nil {
			// Not lost: JetStream redelivers after AckWait, and the
			// consumer deduplicates by event ID.
			b.log.Warn("ack failed; the event will be redelivered and deduplicated", "err", err)
		}
	}
}
