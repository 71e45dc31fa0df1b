package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight"
)

const (
	// StreamName is the stream that is Hindsight's log of record.
	StreamName = "HINDSIGHT_EVENTS"
	// SubjectPrefix starts every event subject: hindsight.events.<source>.
	SubjectPrefix = "hindsight.events."
	// ParkedStreamName holds poison messages: events the correlator could
	// never apply, with the error, for a human to inspect
	// (nats stream view HINDSIGHT_PARKED).
	ParkedStreamName = "HINDSIGHT_PARKED"
	// ParkedSubjectPrefix starts parked messages' subjects:
	// hindsight.parked.<consumer>.
	ParkedSubjectPrefix = "hindsight.parked."
	// DefaultDuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
	// It covers retries and Alertmanager's group_interval repeats; longer
	// repeats are deduplicated by the consumer.
	DefaultDuplicateWindow = 10 * time.Minute
)

// MinServerVersion is the oldest nats-server Hindsight works with: 2.10
// brought the stream features the stream configuration relies on.
var MinServerVersion = [3]int{2, 10, 0}

// Options configures a connection to JetStream.
type Options struct {
	// URL of an external NATS; empty when Server is set.
	URL string
	// Token authenticates the connection: the embedded server's
	// EmbeddedOptions.Token, in-process or through its listener.
	Token string
	// Server is the embedded server, connected to in-process.
	Server *server.Server
	// StreamReplicas for the events stream (1 for a single node, 3 for a
	// cluster). Zero means 1.
	StreamReplicas int
	// DuplicateWindow overrides DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// MaxAge bounds how long events are kept; zero keeps them forever, so
	// the stream can rebuild every incident.
	MaxAge time.Duration
	Name   string // client name shown by the server
	Logger *slog.Logger
	// Guard, when set, refuses publishes while the disk is full.
	Guard *DiskGuard
}

// Bus is a connection to JetStream with the events stream in place.
type Bus struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	log    *slog.Logger
	guard  *DiskGuard
}

// Open connects, checks the server version and creates or updates the
// events stream.
func Open(ctx context.Context, o Options) (*Bus, error) {
	nc, js, log, err := connect(o)
	if err != nil {
		return nil, err
	}
	cfg := StreamConfig(o)
	// A cluster that just formed may not answer yet: retry until ctx ends.
	stream, err := js.CreateOrUpdateStream(ctx, cfg)
	for wait := 250 * time.Millisecond; err != nil && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) &&
		!errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) && ctx.Err() == nil; wait = min(2*wait, 4*time.Second) {
		log.Warn("events stream not ready yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			stream, err = js.CreateOrUpdateStream(ctx, cfg)
		}
	}
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("NATS at %s has JetStream disabled: start nats-server with -js (and a store directory)", o.URL)
		}
		return nil, fmt.Errorf("create or update stream %s: %w", StreamName, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ParkedStreamName,
		Description: "Hindsight events the correlator could not apply, with the error in a header",
		Subjects:    []string{ParkedSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("create or update stream %s: %w", ParkedStreamName, err)
	}
	return &Bus{nc: nc, js: js, stream: stream, log: log, guard: o.Guard}, nil
}

// connect connects to NATS as o says, checks the server's version, and
// returns the connection, its JetStream context and the logger to use.
func connect(o Options) (*nats.Conn, jetstream.JetStream, *slog.Logger, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := o.Name
	if name == "" {
		name = "hindsight"
	}
	nopts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("NATS subscription error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("NATS error", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if o.Token != "" {
		nopts = append(nopts, nats.Token(o.Token))
	}
	url := o.URL
	if o.Server != nil {
		nopts = append(nopts, nats.InProcessServer(o.Server))
		url = ""
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		if o.Server != nil {
			return nil, nil, nil, fmt.Errorf("connect to embedded nats-server: %w", err)
		}
		return nil, nil, nil, fmt.Errorf("connect to NATS at %s: %w", o.URL, err)
	}
	if err := checkVersion(nc.ConnectedServerVersion()); err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, log, nil
}

// StreamConfig is the events stream's configuration for o.
func StreamConfig(o Options) jetstream.StreamConfig {
	replicas := o.StreamReplicas
	if replicas <= 0 {
		replicas = 1
	}
	dup := o.DuplicateWindow
	if dup <= 0 {
		dup = DefaultDuplicateWindow
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Hindsight events: the log of record every incident is folded from",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Replicas:    replicas,
		Duplicates:  dup,
		MaxAge:      o.MaxAge,
		// Events are small; a bigger one is a bug upstream, not an event.
		MaxMsgSize: 1 << 20,
	}
}

func checkVersion(v string) error {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	var got [3]int
	for i := range 3 {
		if i >= len(parts) {
			break
		}
		digits := parts[i]
		if j := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			digits = digits[:j]
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			return fmt.Errorf("cannot read NATS server version %q", v)
		}
		got[i] = n
	}
	for i := range 3 {
		if got[i] != MinServerVersion[i] {
			if got[i] < MinServerVersion[i] {
				return fmt.Errorf("NATS server %s is too old: Hindsight needs nats-server %d.%d or newer", v, MinServerVersion[0], MinServerVersion[1])
			}
			return nil
		}
	}
	return nil
}

// Conn returns the underlying connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Ready reports whether the connection to NATS is up.
func (b *Bus) Ready() error {
	if s := b.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("NATS connection is %s", s)
	}
	if b.guard != nil {
		return b.guard.Err()
	}
	return nil
}

// Close drains nothing: publishes have been acknowledged or failed by the
// time their requests returned.
func (b *Bus) Close() { b.nc.Close() }

// Publish stores events in the stream, each with Nats-Msg-Id set to its
// ID, and returns once JetStream has acknowledged all of them. It reports
// how many the stream already had. Every failure wraps
// hindsight.ErrUnavailable: the sender should retry.
func (b *Bus) Publish(ctx context.Context, events []hindsight.Event) (int, error) {
	if err := b.Ready(); err != nil {
		return 0, fmt.Errorf("%w: %v", hindsight.ErrUnavailable, err)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for i := range events {
		data, err := json.Marshal(&events[i])
		if err != nil {
			return 0, fmt.Errorf("encode event %s: %w", events[i].ID, err)
		}
		msg := &nats.Msg{Subject: SubjectPrefix + string(events[i].Source), Data: data}
		f, err := b.js.PublishMsgAsync(msg, jetstream.WithMsgID(events[i].ID), jetstream.WithExpectStream(StreamName))
		if err != nil {
			return 0, fmt.Errorf("%w: publish event %s: %v", hindsight.ErrUnavailable, events[i].ID, err)
		}
		futures = append(futures, f)
	}
	dups := 0
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case err := <-f.Err():
			return 0, fmt.Errorf("%w: publish event %s: %v", hindsight.ErrUnavailable, f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: waiting for JetStream to acknowledge: %v", hindsight.ErrUnavailable, ctx.Err())
		}
	}
	return dups, nil
}

// Pending returns how many messages a durable consumer has yet to be
// delivered: the consumer's lag.
func (b *Bus) Pending(ctx context.Context, durable string) (uint64, error) {
	c, err := b.stream.Consumer(ctx, durable)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}
