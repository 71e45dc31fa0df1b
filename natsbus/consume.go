package natsbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/internal/jsonwire"
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
	// (default 15s).
	AckWait time.Duration
	// StartAfter is the stream sequence up to which the caller has already
	// applied every event (its own record, committed with its state). The
	// consumer is recreated to deliver from the next one, so a restart
	// after a crash resumes at once instead of waiting out the AckWait of
	// messages the dead process held.
	StartAfter func() (uint64, error)
	// MaxAttempts is how often a message may fail while the messages
	// around it succeed before it is parked as poison (default 5).
	MaxAttempts int
	// OnPoison is called for a message that can never be applied (it does
	// not decode, or keeps failing while others succeed); the message is
	// copied to the parked stream and terminated so it does not block the
	// stream. May be nil.
	OnPoison func(seq uint64, err error)
}

// pullBytes bounds what a consumer asks the server for at once, besides
// the count: a NATS server cuts a client that falls 64 MiB behind (its
// max_pending) as a slow consumer, and 2 × Batch envelopes of up to
// 256 KiB (a storm's large notifications, or a backlog being caught up)
// asked for far more while the fold lagged behind the reading. The cut
// lost the incident notices being published and restarted the
// consumer. It must stay above the stream's largest message, or the
// consumer spins on pulls that can never be answered: the build fails if
// it does not.
const pullBytes = 16 << 20

// maxMsgSize is the events stream's largest message (its MaxMsgSize).
const maxMsgSize = 1 << 20

const _ uint = pullBytes - maxMsgSize // pullBytes must not be below maxMsgSize

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
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.AckWait <= 0 {
		// Short, so acks lost while a clustered consumer changes leader
		// hold the ack window for seconds, not minutes; a batch that takes
		// longer is merely redelivered and deduplicated.
		o.AckWait = 15 * time.Second
	}
	if o.StartAfter == nil {
		o.StartAfter = func() (uint64, error) { return 0, nil }
	}
	for {
		err := b.consume(ctx, o, apply)
		if ctx.Err() != nil {
			return nil
		}
		// The broker restarted without the consumer, or NATS is away:
		// start again from the watermark, which nothing can lose.
		b.log.Warn("consumer interrupted; resuming from the last applied event", "consumer", o.Durable, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (b *Bus) consume(ctx context.Context, o ConsumerOptions, apply func(context.Context, []Delivery) error) error {
	after, err := o.StartAfter()
	if err != nil {
		return fmt.Errorf("read the last applied sequence: %w", err)
	}
	// The caller's watermark, not the consumer's state, says where to
	// resume: drop the old consumer (its unacked deliveries belonged to a
	// process that is gone) and start after the watermark.
	if err := b.js.DeleteConsumer(ctx, StreamName, o.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reset consumer %s: %w", o.Durable, err)
	}
	deliver, start := jetstream.DeliverAllPolicy, uint64(0)
	if after > 0 {
		deliver, start = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:       o.Durable,
		Description:   "Hindsight correlator: folds events into incidents",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: deliver,
		OptStartSeq:   start,
		FilterSubject: SubjectPrefix + ">",
		AckWait:       o.AckWait,
		// Redelivery is the handler's business (it retries in place and
		// parks poison), so JetStream never gives up on its own.
		MaxDeliver:    -1,
		MaxAckPending: 4 * o.Batch,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", o.Durable, err)
	}
	// Short pulls and heartbeats notice a lost consumer leader (a node
	// of the cluster died) in seconds instead of nats.go's default 30s.
	iter, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(2*o.Batch, pullBytes), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return fmt.Errorf("consume %s: %w", o.Durable, err)
	}
	msgs := make(chan jetstream.Msg, o.Batch)
	var stopErr error
	go func() {
		defer close(msgs)
		for {
			m, err := iter.Next()
			if err != nil {
				// A missed heartbeat means the consumer lost its leader or
				// its connection: acks sent meanwhile may be lost too, so
				// start again from the watermark rather than wait them out.
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
					errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrNoHeartbeat) {
					stopErr = err
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

	h := &handler{b: b, o: o, apply: apply, msgs: msgs, attempts: map[uint64]int{}}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return fmt.Errorf("message iterator stopped: %w", stopErr)
			}
			h.add(m)
		}
		h.drain()
		if h.gap != nil {
			return h.gap
		}
		h.run(ctx)
	}
}

// handler applies batches, retries failures, and parks poison. Its unit
// is a message: one event, or an envelope of several, acknowledged,
// retried and parked whole.
type handler struct {
	b        *Bus
	o        ConsumerOptions
	apply    func(context.Context, []Delivery) error
	msgs     <-chan jetstream.Msg
	units    []unit
	events   int            // deliveries in units
	attempts map[uint64]int // failed attempts of a message the stream has flowed past
	lastCons uint64         // consumer sequence of the last delivery
	gap      error          // a delivery was lost on the way: resume from the watermark
	applied  uint64         // highest sequence applied
}

// unit is one message and the events it holds (those still to apply,
// once some of an envelope's have been: partial). progressed says that
// some of them applied in the last round, so that the ones left fail for
// what they are, not for the storage.
type unit struct {
	m          jetstream.Msg
	seq        uint64
	ds         []Delivery
	partial    bool
	progressed bool
}

// applyUnit applies one message's events: all at once, else (an envelope
// that fails) one by one, so that one poison event does not hold back
// the others. Events applied apart are committed with the sequence before
// the message's, so the caller's watermark never passes a message until
// all of it applied: a crash meanwhile redelivers the whole envelope, and
// the events already applied collapse by ID. It returns what is left to
// apply, nil when nothing is.
//
// limit caps the sequence committed (noLimit: none): a message before this
// one is still failing, and the caller's watermark must not pass it, or a
// crash would resume after it and neither apply nor park it.
func (h *handler) applyUnit(ctx context.Context, u unit, limit uint64) (*unit, error) {
	capped := func(seq uint64) uint64 { return min(seq, limit) }
	ds := u.ds
	if capped(u.seq) != u.seq {
		ds = make([]Delivery, len(u.ds))
		for i, d := range u.ds {
			d.Seq = capped(u.seq)
			ds[i] = d
		}
	}
	err := h.safeApply(ctx, ds)
	if err == nil {
		return nil, nil
	}
	if len(u.ds) == 1 {
		u.progressed = false
		return &u, err
	}
	left := u
	left.ds, left.progressed = nil, false
	var firstErr error
	for _, d := range u.ds {
		d.Seq = capped(u.seq - 1)
		if e := h.safeApply(ctx, []Delivery{d}); e != nil {
			d.Seq = u.seq
			left.ds = append(left.ds, d)
			firstErr = cmp.Or(firstErr, e)
		} else {
			left.partial, left.progressed = true, true
		}
	}
	if len(left.ds) == 0 {
		return nil, nil
	}
	return &left, firstErr
}

// noLimit is applyUnit's limit when nothing before the message failed.
const noLimit = ^uint64(0)

// parkUnit parks a message whose events keep failing: the whole message,
// or, of an envelope some of whose events applied, each event left.
func (h *handler) parkUnit(u unit, why error) {
	if !u.partial {
		h.park(u.m, u.seq, why)
		return
	}
	for _, d := range u.ds {
		data, err := jsonwire.Marshal(&d.Event)
		if err != nil {
			data = []byte(d.Event.ID)
		}
		h.parkData(data, "", u.seq, fmt.Errorf("event %s of an envelope: %w", d.Event.ID, why))
	}
	_ = u.m.Term()
}

// add decodes a message into the batch, or parks it if it can never be
// decoded.
func (h *handler) add(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		h.b.log.Error("message without metadata", "err", err)
		_ = m.Term()
		return
	}
	// Consumer sequences count every delivery; a jump means the client
	// dropped one (a slow consumer after a reconnect, say). It would only
	// come back after AckWait, so start again from the watermark now.
	if h.lastCons != 0 && meta.Sequence.Consumer > h.lastCons+1 && h.gap == nil {
		h.gap = fmt.Errorf("deliveries %d to %d were lost on the way", h.lastCons+1, meta.Sequence.Consumer-1)
	}
	h.lastCons = max(h.lastCons, meta.Sequence.Consumer)
	u := unit{m: m, seq: meta.Sequence.Stream}
	events, err := unpack(m.Data(), m.Headers())
	if err != nil {
		h.park(m, u.seq, fmt.Errorf("cannot decode event: %w", err))
		return
	}
	for _, e := range events {
		u.ds = append(u.ds, Delivery{Event: e, Seq: u.seq, Delivered: meta.NumDelivered})
	}
	h.units = append(h.units, u)
	h.events += len(u.ds)
}

// drain adds the messages already waiting, up to a batch.
func (h *handler) drain() {
	for h.events < h.o.Batch {
		select {
		case m, ok := <-h.msgs:
			if !ok {
				return
			}
			h.add(m)
		default:
			return
		}
	}
}

func deliveries(units []unit) []Delivery {
	var ds []Delivery
	for _, u := range units {
		ds = append(ds, u.ds...)
	}
	return ds
}

// run applies the batch until it is acknowledged. A batch that fails is
// retried message by message: a message that keeps failing while later
// ones succeed is poison and is parked after MaxAttempts; when every message
// fails (the disk is full, say) nothing is parked and the batch is retried
// with backoff, never skipped.
func (h *handler) run(ctx context.Context) {
	if len(h.units) == 0 {
		return
	}
	err := h.safeApply(ctx, deliveries(h.units))
	if err == nil {
		h.applied = max(h.applied, h.units[len(h.units)-1].seq)
		for _, u := range h.units {
			h.ack(u.m)
		}
		h.units, h.events = h.units[:0], 0
		return
	}
	for wait := 100 * time.Millisecond; len(h.units) > 0; wait = min(2*wait, 5*time.Second) {
		h.b.log.Error("apply events failed; retrying message by message", "messages", len(h.units), "first_seq", h.units[0].seq, "err", err)
		var failed []unit
		var errs []error
		limit := uint64(noLimit) // below the first message left failing
		for _, u := range h.units {
			rest, e := h.applyUnit(ctx, u, limit)
			if rest == nil {
				h.applied = max(h.applied, u.seq)
				h.ack(u.m)
				continue
			}
			failed, errs = append(failed, *rest), append(errs, e)
			if limit == noLimit {
				limit = u.seq - 1
			}
		}
		h.units, h.events = h.units[:0], 0
		for i, u := range failed {
			// Only a failure the stream has flowed past counts (a later
			// message, or another event of the same envelope, applied):
			// if nothing applies, the trouble is ours (storage), not the
			// message's.
			if h.applied > u.seq || u.progressed {
				h.attempts[u.seq]++
			}
			if h.attempts[u.seq] >= h.o.MaxAttempts {
				delete(h.attempts, u.seq)
				h.parkUnit(u, errs[i])
				continue
			}
			h.units, h.events = append(h.units, u), h.events+len(u.ds)
			err = errs[i]
		}
		if len(h.units) == 0 {
			return
		}
		for _, u := range h.units {
			_ = u.m.InProgress() // keep JetStream from redelivering meanwhile
		}
		select {
		case <-ctx.Done():
			return // not acked: the next start resumes from the watermark
		case <-time.After(wait):
		}
		h.drain() // does the stream flow past the failures?
	}
}

func (h *handler) safeApply(ctx context.Context, ds []Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return h.apply(ctx, ds)
}

func (h *handler) ack(ms ...jetstream.Msg) {
	for _, m := range ms {
		if err := m.Ack(); err != nil {
			// Not lost: JetStream redelivers after AckWait, and the
			// consumer deduplicates by event ID.
			h.b.log.Warn("ack failed; the event will be redelivered and deduplicated", "err", err)
		}
	}
}

// park copies a message that can never be applied to the parked stream,
// with why, and terminates it so it no longer blocks the stream.
func (h *handler) park(m jetstream.Msg, seq uint64, why error) {
	h.parkData(m.Data(), m.Headers().Get(HeaderEvents), seq, why)
	_ = m.Term()
}

// parkData parks a message body (envelope: its HeaderEvents, or "").
func (h *handler) parkData(data []byte, envelope string, seq uint64, why error) {
	h.b.log.Error("poison message parked", "seq", seq, "stream", ParkedStreamName, "err", why)
	pm := &nats.Msg{Subject: ParkedSubjectPrefix + h.o.Durable, Data: data, Header: nats.Header{}}
	if envelope != "" {
		pm.Header.Set(HeaderEvents, envelope)
	}
	pm.Header.Set("Hindsight-Original-Seq", strconv.FormatUint(seq, 10))
	pm.Header.Set("Hindsight-Error", why.Error())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.b.js.PublishMsg(ctx, pm); err != nil {
		h.b.log.Error("could not park poison message; it stays in the events stream", "seq", seq, "err", err)
	}
	if h.o.OnPoison != nil {
		h.o.OnPoison(seq, why)
	}
}
