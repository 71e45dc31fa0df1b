package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
)

// Source delivers incident notices to a durable consumer: natsbus.Bus.
// consume hands notices to handle one at a time, with the attempt (1 the
// first time), acknowledging each once handle returns nil and delivering
// it again after retry[attempt-1] when it fails, at most len(retry)+1
// times in all.
type Source interface {
	NoticeConsumer(ctx context.Context, durable string, retry []time.Duration) (
		consume func(ctx context.Context, handle func(ctx context.Context, n hindsight.Notice, attempt int) error) error, err error)
}

// Incidents reads incidents as the API serves them (api.Incidents).
type Incidents interface {
	Incident(ctx context.Context, id string) (*hindsight.Incident, error)
	List(ctx context.Context, o boltstore.ListOptions) ([]hindsight.Incident, string, error)
}

// Renderer renders a postmortem draft (draft.Renderer).
type Renderer interface {
	Render(w io.Writer, inc *hindsight.Incident, human hindsight.PostmortemFields, asOf time.Time) error
}

// DefaultRetry are the delays before each redelivery of a notice whose
// sink failed: ten deliveries over about twenty minutes.
var DefaultRetry = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}

// Options configures the sinks. Source and Incidents are required, and
// Renderer with a Directory.
type Options struct {
	Source    Source
	Incidents Incidents
	Renderer  Renderer
	// Applied returns the last stream sequence the local store has
	// folded: a sink waits for the store to hold a notice's change (the
	// notice may come from another correlator replica that is ahead).
	// Nil: no wait.
	Applied func() (uint64, error)
	// ExternalURL is the base of the links sinks send:
	// <ExternalURL>/incidents/<id>.
	ExternalURL string
	Directory   *DirectoryOptions
	Webhook     *WebhookOptions
	// Retry overrides DefaultRetry.
	Retry []time.Duration
	// Now is the clock (webhook staleness); tests fix it.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Sinks are the configured sinks, ready to run.
type Sinks struct {
	o         Options
	sinks     []sink
	log       *slog.Logger
	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
	// consumers holds what Prepare created, by sink; Run creates the rest.
	consumers []consumeFunc
}

// consumeFunc runs a sink's consumer (Source.NoticeConsumer's consume).
type consumeFunc = func(ctx context.Context, handle func(ctx context.Context, n hindsight.Notice, attempt int) error) error

// A sink is one destination.
type sink interface {
	// name is the sink's metric label and log name; durable its consumer.
	name() string
	durable() string
	// wants reports whether the sink acts on a notice.
	wants(n hindsight.Notice) bool
	// deliver acts on a notice about inc (nil when the store does not
	// have it). An error that is a *permanentError is not retried.
	deliver(ctx context.Context, n hindsight.Notice, inc *hindsight.Incident) error
}

// startup is a sink with work to do when it starts (after its consumer
// exists, so nothing published meanwhile falls between the two).
type startup interface {
	catchUp(ctx context.Context) error
}

// permanentError is a failure that retrying cannot mend (a 4xx).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// New checks the options and prepares the configured sinks (none when
// neither Directory nor Webhook is set).
func New(o Options) (*Sinks, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Retry) == 0 {
		o.Retry = DefaultRetry
	}
	s := &Sinks{o: o, log: o.Logger,
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hindsight_sink_delivered_total",
			Help: "Incident notices a sink acted on (a postmortem file written, a webhook posted)."}, []string{"sink"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hindsight_sink_failed_total",
			Help: "Incident notices a sink gave up on: refused for good (a 4xx) or failing on every attempt. The log says which."}, []string{"sink"}),
	}
	if o.Directory != nil {
		d, err := newDirectory(*o.Directory, o)
		if err != nil {
			return nil, err
		}
		s.sinks = append(s.sinks, d)
	}
	if o.Webhook != nil {
		w, err := newWebhook(*o.Webhook, o)
		if err != nil {
			return nil, err
		}
		s.sinks = append(s.sinks, w)
	}
	if len(s.sinks) > 0 && (o.Source == nil || o.Incidents == nil) {
		return nil, errors.New("sinks need a notice source and the incidents")
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.delivered, s.failed)
	}
	for _, k := range s.sinks {
		s.delivered.WithLabelValues(k.name())
		s.failed.WithLabelValues(k.name())
	}
	return s, nil
}

// Len is how many sinks are configured.
func (s *Sinks) Len() int { return len(s.sinks) }

// Prepare creates each sink's consumer now, waiting at most timeout for
// all of them. A consumer starts with the notices published after it is
// created, so the caller prepares the sinks before the correlator folds
// anything: one created later misses what was published in between (on
// the first start, a resolve folded from the backlog would never be
// posted). A consumer it cannot create yet, Run goes on trying to.
func (s *Sinks) Prepare(ctx context.Context, timeout time.Duration) {
	s.consumers = make([]consumeFunc, len(s.sinks))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for i, k := range s.sinks {
		consume, err := s.o.Source.NoticeConsumer(ctx, k.durable(), s.o.Retry)
		if err != nil {
			s.log.Warn("sink cannot follow incident notices yet; notices published until it can are not delivered", "sink", k.name(), "consumer", k.durable(), "err", err)
			continue
		}
		s.consumers[i] = consume
	}
}

// Run runs every sink until ctx is done.
func (s *Sinks) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, k := range s.sinks {
		var prepared consumeFunc
		if i < len(s.consumers) {
			prepared = s.consumers[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, k, prepared)
		}()
	}
	wg.Wait()
}

func (s *Sinks) run(ctx context.Context, k sink, consume consumeFunc) {
	log := s.log.With("sink", k.name())
	for wait := time.Second; consume == nil; wait = min(2*wait, 30*time.Second) {
		var err error
		consume, err = s.o.Source.NoticeConsumer(ctx, k.durable(), s.o.Retry)
		if err == nil {
			break
		}
		log.Warn("sink cannot follow incident notices yet; retrying", "consumer", k.durable(), "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	if c, ok := k.(startup); ok {
		if err := c.catchUp(ctx); err != nil && ctx.Err() == nil {
			log.Error("sink catch-up failed; new notices are still followed", "err", err)
		}
	}
	log.Info("sink following incident notices", "consumer", k.durable())
	_ = consume(ctx, func(ctx context.Context, n hindsight.Notice, attempt int) error {
		return s.handle(ctx, log, k, n, attempt)
	})
}

// handle acts on one notice and decides what its failure means.
func (s *Sinks) handle(ctx context.Context, log *slog.Logger, k sink, n hindsight.Notice, attempt int) error {
	if !k.wants(n) {
		return nil
	}
	log = log.With("incident", n.Incident, "change", n.Change, "seq", n.Seq, "attempt", attempt)
	inc, err := s.incident(ctx, n)
	if err == nil {
		err = k.deliver(ctx, n, inc)
	}
	var pe *permanentError
	switch {
	case err == nil:
		s.delivered.WithLabelValues(k.name()).Inc()
		return nil
	case ctx.Err() != nil:
		return err
	case errors.As(err, &pe):
		s.failed.WithLabelValues(k.name()).Inc()
		log.Error("sink gave up: refused for good; not retried", "err", err)
		return nil
	case attempt > len(s.o.Retry):
		s.failed.WithLabelValues(k.name()).Inc()
		log.Error("sink gave up: failed on every attempt; the notice is dropped", "attempts", attempt, "err", err)
		return err
	}
	log.Warn("sink failed; will retry", "retry_in", s.o.Retry[attempt-1], "err", err)
	return err
}

// incident reads the incident a notice is about once the local store
// holds the change: nil when the store has no such incident.
func (s *Sinks) incident(ctx context.Context, n hindsight.Notice) (*hindsight.Incident, error) {
	if s.o.Applied != nil {
		deadline := time.Now().Add(20 * time.Second)
		for {
			seq, err := s.o.Applied()
			if err != nil {
				return nil, fmt.Errorf("read the store's position: %w", err)
			}
			if seq >= n.Seq {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("the local store has folded up to seq %d, the notice is of seq %d", seq, n.Seq)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	inc, err := s.o.Incidents.Incident(ctx, n.Incident)
	if errors.Is(err, hindsight.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read incident %s: %w", n.Incident, err)
	}
	return inc, nil
}
