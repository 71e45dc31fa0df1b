package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
)

// Incident lifecycle notices: what the correlator publishes after each
// commit, one message per changed incident, for live pages and sinks.
//
// What a notice promises, and does not: the bbolt commit is the truth, and a notice only reports it: the
// correlator publishes after the commit and never fails or retries a fold
// for a notice. A notice is lost when NATS is away (or slower than
// NoticeTimeout) at that moment; the incident itself is not. A sink that
// must not miss one catches up from the store (the directory sink writes
// every published postmortem whose file is missing at startup); one that
// cannot (a webhook) misses that message.
//
// Nats-Msg-Id is incident|change|mark (Notice.Mark: the change named by
// what the incident records, with the state it left the incident in), so
// two correlator replicas publish the same ID for a state both reach,
// however they cut the stream into batches, and the stream keeps one
// message. Sinks must tolerate a repeated notice; a correlator that folds
// the stream from the start (a new replica, hindsight rebuild on a
// running serve) publishes a notice for every change in its history.
const (
	// NoticeStreamName is the stream that keeps notices for the sinks'
	// durable consumers.
	NoticeStreamName = "HINDSIGHT_INCIDENTS"
	// NoticeSubjectPrefix starts every notice subject:
	// hindsight.incidents.<change>.
	NoticeSubjectPrefix = "hindsight.incidents."
	// DefaultNoticeMaxAge is how long the notices stream keeps a notice.
	DefaultNoticeMaxAge = 30 * 24 * time.Hour
	// NoticeDuplicateWindow is how long the notices stream remembers a
	// notice's ID: long enough for a replica that lags the other by a
	// restart to publish the same notice again.
	NoticeDuplicateWindow = time.Hour
	// NoticeTimeout bounds how long Notifier holds the correlator up while
	// JetStream acknowledges a commit's notices.
	NoticeTimeout = 2 * time.Second
)

// NoticeStreamOptions configures the notices stream.
type NoticeStreamOptions struct {
	// MaxAge overrides DefaultNoticeMaxAge.
	MaxAge time.Duration
}

// OpenNotices creates the notices stream, or brings an existing one to
// the settings o gives. It has the events stream's replicas and
// placement, file storage, and the duplicate window NoticeDuplicateWindow.
func (b *Bus) OpenNotices(ctx context.Context, o NoticeStreamOptions) error {
	events := b.stream.CachedInfo().Config
	cfg := jetstream.StreamConfig{
		Name:        NoticeStreamName,
		Description: "Hindsight incident lifecycle notices (opened, resolved, published, ...), for sinks and live pages",
		Subjects:    []string{NoticeSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      DefaultNoticeMaxAge,
		MaxBytes:    -1,
		MaxMsgs:     -1,
		MaxMsgSize:  64 << 10,
		Duplicates:  NoticeDuplicateWindow,
		Replicas:    events.Replicas,
		Placement:   clonePlacement(events.Placement),
	}
	if o.MaxAge > 0 {
		cfg.MaxAge = o.MaxAge
	}
	cfg.Duplicates = min(cfg.Duplicates, cfg.MaxAge)
	if s, err := b.js.Stream(ctx, NoticeStreamName); err == nil {
		old := s.CachedInfo().Config
		if old.Storage != jetstream.FileStorage {
			return fmt.Errorf("stream %s has %s storage and JetStream cannot change it: delete it (nats stream rm %s; it only holds notices) and restart Hindsight",
				NoticeStreamName, old.Storage, NoticeStreamName)
		}
		if old.Replicas != cfg.Replicas && !samePlacement(old.Placement, cfg.Placement) {
			// JetStream moves or scales a stream, not both at once.
			cfg.Placement = old.Placement
		}
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("create or update stream %s: %w", NoticeStreamName, err)
	}
	return nil
}

// NoticeMsgID is the Nats-Msg-Id of a notice: incident|change|mark, or
// incident|change|seq when the notice has no mark.
func NoticeMsgID(n hindsight.Notice) string {
	if n.Mark != "" {
		return n.Incident + "|" + n.Change + "|" + n.Mark
	}
	return fmt.Sprintf("%s|%s|%d", n.Incident, n.Change, n.Seq)
}

// PublishNotices stores notices in the notices stream, each on
// hindsight.incidents.<change> with Nats-Msg-Id NoticeMsgID, and returns
// once JetStream acknowledged all of them or ctx is done.
func (b *Bus) PublishNotices(ctx context.Context, notices []hindsight.Notice) error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("%w: NATS connection is %s", hindsight.ErrUnavailable, s)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(notices))
	for _, n := range notices {
		data, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("encode notice %s: %w", NoticeMsgID(n), err)
		}
		msg := &nats.Msg{Subject: NoticeSubjectPrefix + subjectToken(n.Change), Data: data}
		f, err := b.js.PublishMsgAsync(msg, jetstream.WithMsgID(NoticeMsgID(n)), jetstream.WithExpectStream(NoticeStreamName))
		if err != nil {
			return fmt.Errorf("publish notice %s: %w", NoticeMsgID(n), err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish notice %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for JetStream to acknowledge notices: %w", ctx.Err())
		}
	}
	return nil
}

// subjectToken keeps a change usable as one subject token.
func subjectToken(s string) string {
	if s == "" {
		return "unknown"
	}
	out := []byte(s)
	for i, c := range out {
		if c == '.' || c == '*' || c == '>' || c <= ' ' || c >= 0x7f {
			out[i] = '_'
		}
	}
	return string(out)
}

// Notifier returns the function the correlator calls after each commit
// (correlate.Correlator.Notify): it publishes the notices, waiting at
// most NoticeTimeout, and on failure logs and counts them in
// hindsight_notices_failed_total instead of failing the fold. reg may be
// nil.
func (b *Bus) Notifier(reg prometheus.Registerer) func(context.Context, []hindsight.Notice) {
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "hindsight_notices_failed_total",
		Help: "Incident lifecycle notices the correlator could not publish on NATS (the incidents are stored; sinks may miss the change)."})
	if reg != nil {
		reg.MustRegister(failed)
	}
	return func(ctx context.Context, notices []hindsight.Notice) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), NoticeTimeout)
		defer cancel()
		if err := b.PublishNotices(ctx, notices); err != nil {
			failed.Add(float64(len(notices)))
			b.log.Warn("incident notices not published; the incidents are stored, but sinks and live pages miss these changes",
				"count", len(notices), "first", NoticeMsgID(notices[0]), "err", err)
		}
	}
}

// WatchNotices calls fn with every notice published from now on, on a
// plain NATS subscription (no durability: for live pages), until ctx is
// done or stop is called. fn runs on one goroutine, in order. A notice
// two correlator replicas both publish reaches subscribers twice (the
// stream keeps one, the subject carries both); WatchNotices drops a
// repeat of one of the last few thousand IDs.
func (b *Bus) WatchNotices(ctx context.Context, fn func(hindsight.Notice)) (stop func(), err error) {
	seen := newRecent(4096)
	sub, err := b.nc.Subscribe(NoticeSubjectPrefix+">", func(m *nats.Msg) {
		if id := m.Header.Get(jetstream.MsgIDHeader); id != "" && !seen.add(id) {
			return
		}
		var n hindsight.Notice
		if err := json.Unmarshal(m.Data, &n); err != nil {
			b.log.Warn("undecodable incident notice", "subject", m.Subject, "err", err)
			return
		}
		fn(n)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s>: %w", NoticeSubjectPrefix, err)
	}
	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			_ = sub.Unsubscribe()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return stop, nil
}

// recent is a set of the last n strings added.
type recent struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add reports whether s is new, and remembers it.
func (r *recent) add(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[s]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = s
	r.next = (r.next + 1) % len(r.ring)
	r.set[s] = struct{}{}
	return true
}

// NoticeConsumer creates (or finds) the durable consumer durable on the
// notices stream and returns the function that runs it. A consumer it
// creates starts with the notices published from then on: enabling a
// sink does not replay a month of them. retry are the delays before each
// redelivery of a notice whose handler failed; a notice is delivered at
// most len(retry)+1 times (the consumer's MaxDeliver). The handler learns
// which attempt it is (1 the first time), so it can log and count the
// last failure; after it the notice is terminated.
//
// consume delivers notices one at a time and acknowledges each after
// handle returns nil. It returns when ctx is done; when the consumer or
// the connection is lost it recreates the consumer and goes on.
func (b *Bus) NoticeConsumer(ctx context.Context, durable string, retry []time.Duration) (
	consume func(ctx context.Context, handle func(ctx context.Context, n hindsight.Notice, attempt int) error) error, err error) {
	if len(retry) == 0 {
		retry = []time.Duration{time.Second}
	}
	if err := b.ensureNoticeConsumer(ctx, durable, retry); err != nil {
		return nil, err
	}
	return func(ctx context.Context, handle func(context.Context, hindsight.Notice, int) error) error {
		for {
			err := b.consumeNotices(ctx, durable, retry, handle)
			if ctx.Err() != nil {
				return nil
			}
			b.log.Warn("notice consumer interrupted; resuming", "consumer", durable, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			if err := b.ensureNoticeConsumer(ctx, durable, retry); err != nil {
				b.log.Warn("notice consumer not recreated yet", "consumer", durable, "err", err)
			}
		}
	}, nil
}

// noticeAckWait is how long JetStream waits for a handler before it
// redelivers; a handler that runs longer is kept alive with InProgress.
const noticeAckWait = 30 * time.Second

func (b *Bus) ensureNoticeConsumer(ctx context.Context, durable string, retry []time.Duration) error {
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "Hindsight sink: follows incident notices",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: NoticeSubjectPrefix + ">",
		AckWait:       noticeAckWait,
		MaxDeliver:    len(retry) + 1,
		MaxAckPending: 64,
	}
	if c, err := b.js.Consumer(ctx, NoticeStreamName, durable); err == nil {
		// JetStream cannot change where a consumer starts.
		old := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("look up consumer %s: %w", durable, err)
	}
	if _, err := b.js.CreateOrUpdateConsumer(ctx, NoticeStreamName, cfg); err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", durable, NoticeStreamName, err)
	}
	return nil
}

func (b *Bus) consumeNotices(ctx context.Context, durable string, retry []time.Duration, handle func(context.Context, hindsight.Notice, int) error) error {
	cons, err := b.js.Consumer(ctx, NoticeStreamName, durable)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", durable, err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(16), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return fmt.Errorf("consume %s: %w", durable, err)
	}
	defer iter.Stop()
	go func() {
		<-ctx.Done()
		iter.Stop()
	}()
	log := b.log.With("consumer", durable)
	for {
		m, err := iter.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
				errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrNoHeartbeat) {
				return err
			}
			log.Warn("waiting for notices", "err", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		b.handleNotice(ctx, log, m, retry, handle)
	}
}

func (b *Bus) handleNotice(ctx context.Context, log *slog.Logger, m jetstream.Msg, retry []time.Duration, handle func(context.Context, hindsight.Notice, int) error) {
	meta, err := m.Metadata()
	if err != nil {
		log.Error("notice without metadata; dropped", "err", err)
		_ = m.Term()
		return
	}
	var n hindsight.Notice
	if err := json.Unmarshal(m.Data(), &n); err != nil || n.Incident == "" {
		log.Error("undecodable notice; dropped", "seq", meta.Sequence.Stream, "err", err)
		_ = m.Term()
		return
	}
	attempt := int(meta.NumDelivered)
	// Keep JetStream from redelivering while a slow handler works.
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(noticeAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	err = safeHandle(ctx, handle, n, attempt)
	close(done)
	switch {
	case err == nil:
		if err := m.Ack(); err != nil {
			log.Warn("notice ack failed; it will be delivered again", "notice", NoticeMsgID(n), "err", err)
		}
	case ctx.Err() != nil:
		// Shutting down: JetStream redelivers it to the next process.
	case attempt > len(retry):
		log.Error("notice failed on its last attempt; dropped", "notice", NoticeMsgID(n), "attempts", attempt, "err", err)
		_ = m.Term()
	default:
		_ = m.NakWithDelay(retry[attempt-1])
	}
}

func safeHandle(ctx context.Context, handle func(context.Context, hindsight.Notice, int) error, n hindsight.Notice, attempt int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return handle(ctx, n, attempt)
}
