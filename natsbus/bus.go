package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

	// The events stream's settings. The zero value of each leaves an
	// existing stream's setting as it is and gives a stream Open creates
	// the default, so a process whose configuration leaves a setting out
	// does not undo what another process (or an operator) set.

	// StreamReplicas for the events stream and the parked stream: 1 (the
	// default) for a single node, 3 for a cluster. JetStream allows at
	// most 5.
	StreamReplicas int
	// Placement constrains the servers that hold the streams' replicas;
	// by default JetStream picks them in the cluster of the server the
	// stream is created through.
	Placement *Placement
	// DuplicateWindow overrides DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// MaxAge, MaxBytes and MaxMsgs bound what the events stream keeps: past
	// a limit JetStream discards the oldest events. Unlimited lifts a
	// limit. By default there is none, so the stream can rebuild every
	// incident, and a correlator that starts from an empty state folds the
	// same incidents as one that has run all along.
	MaxAge   time.Duration
	MaxBytes int64
	MaxMsgs  int64

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

// Open connects, checks the server version, and creates the events
// stream or brings an existing one to the settings o gives (see
// Options): those JetStream can change are changed, and logged; those it
// cannot (the storage type, a work-queue retention) make Open fail with a
// message that says what to do.
func Open(ctx context.Context, o Options) (*Bus, error) {
	nc, js, log, err := connect(o)
	if err != nil {
		return nil, err
	}
	where := "NATS at " + o.URL
	if o.Server != nil {
		where = "the embedded nats-server"
	}
	// A cluster that just formed may not answer yet: retry until ctx ends,
	// unless JetStream refused the settings for good.
	stream, err := ensureStream(ctx, js, o, log, where)
	for wait := 250 * time.Millisecond; err != nil && retryable(err) && ctx.Err() == nil; wait = min(2*wait, 4*time.Second) {
		log.Warn("events stream not ready yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			stream, err = ensureStream(ctx, js, o, log, where)
		}
	}
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("NATS at %s has JetStream disabled: start nats-server with -js (and a store directory)", o.URL)
		}
		err = explain(err, o, where)
		var se *settingsError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, fmt.Errorf("create or update stream %s: %w", StreamName, err)
	}
	cfg := stream.CachedInfo().Config
	if cfg.Placement != nil && nc.ConnectedClusterName() == "" {
		log.Warn("the events stream has a placement, which a single nats-server ignores", "stream", StreamName,
			"placement", placementString(cfg.Placement))
	}
	// The parked stream follows the events stream's replicas and
	// placement; it has no limits.
	parked := jetstream.StreamConfig{
		Name:        ParkedStreamName,
		Description: "Hindsight events the correlator could not apply, with the error in a header",
		Subjects:    []string{ParkedSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Placement:   clonePlacement(cfg.Placement),
	}
	if info, err := js.Stream(ctx, ParkedStreamName); err == nil {
		old := info.CachedInfo().Config
		if old.Replicas != parked.Replicas && !samePlacement(old.Placement, parked.Placement) {
			// JetStream moves or scales a stream, not both at once.
			parked.Placement = old.Placement
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, parked); err != nil {
		nc.Close()
		return nil, fmt.Errorf("create or update stream %s: %w", ParkedStreamName, explain(err, o, where))
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

// Unlimited, as Options.MaxAge, MaxBytes or MaxMsgs, lifts that limit
// from an existing stream (zero leaves the stream's limit as it is).
const Unlimited = -1

// Placement says which servers may hold the streams' replicas: servers
// of Cluster (empty: the cluster of the server the stream is created
// through) that have every one of Tags (nats-server's server_tags).
type Placement struct {
	Cluster string
	Tags    []string
}

// StreamConfig is the configuration of an events stream Open creates for
// o: the defaults where o leaves a setting at zero.
func StreamConfig(o Options) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Replicas:   1,
		Duplicates: DefaultDuplicateWindow,
		MaxAge:     0, // forever
		MaxBytes:   -1,
		MaxMsgs:    -1,
	}
	cfg, _ = withSettings(hindsightStream(cfg), o)
	return cfg
}

// hindsightStream is cfg with what Hindsight needs of its events stream
// whatever the settings: file storage, limits retention that discards
// the oldest events, its subjects (those cfg has besides are kept).
func hindsightStream(cfg jetstream.StreamConfig) jetstream.StreamConfig {
	cfg.Name = StreamName
	cfg.Description = "Hindsight events: the log of record every incident is folded from"
	cfg.Subjects = slices.Clone(cfg.Subjects)
	if !slices.Contains(cfg.Subjects, SubjectPrefix+">") {
		cfg.Subjects = append(cfg.Subjects, SubjectPrefix+">")
	}
	cfg.Storage = jetstream.FileStorage
	cfg.Retention = jetstream.LimitsPolicy
	cfg.Discard = jetstream.DiscardOld
	// Events are small; a bigger one is a bug upstream, not an event.
	cfg.MaxMsgSize = maxMsgSize
	return cfg
}

// withSettings is cfg with the settings o gives (non-zero). It reports
// whether it shortened the duplicate window to the max age, which
// JetStream requires (o setting both such that it must is refused in
// updatedConfig; the config file's check refuses it earlier).
func withSettings(cfg jetstream.StreamConfig, o Options) (jetstream.StreamConfig, bool) {
	if o.StreamReplicas > 0 {
		cfg.Replicas = o.StreamReplicas
	}
	if o.Placement != nil {
		cfg.Placement = &jetstream.Placement{Cluster: o.Placement.Cluster, Tags: slices.Clone(o.Placement.Tags)}
	} else {
		cfg.Placement = clonePlacement(cfg.Placement)
	}
	if o.DuplicateWindow > 0 {
		cfg.Duplicates = o.DuplicateWindow
	}
	switch {
	case o.MaxAge > 0:
		cfg.MaxAge = o.MaxAge
	case o.MaxAge < 0:
		cfg.MaxAge = 0
	}
	switch {
	case o.MaxBytes > 0:
		cfg.MaxBytes = o.MaxBytes
	case o.MaxBytes < 0:
		cfg.MaxBytes = -1
	}
	switch {
	case o.MaxMsgs > 0:
		cfg.MaxMsgs = o.MaxMsgs
	case o.MaxMsgs < 0:
		cfg.MaxMsgs = -1
	}
	if cfg.MaxAge > 0 && cfg.Duplicates > cfg.MaxAge {
		cfg.Duplicates = cfg.MaxAge
		return cfg, true
	}
	return cfg, false
}

// A settingsError is a stream setting JetStream can never accept as it
// stands: retrying does not help, a human must change something.
type settingsError struct{ msg string }

func (e *settingsError) Error() string { return e.msg }

// retryable reports whether err may go away by itself: a cluster still
// forming, a leader being elected, another process changing the stream.
func retryable(err error) bool {
	var se *settingsError
	if errors.As(err, &se) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return false
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode {
		case errReplicasNotSupported, errInvalidConfig, errStreamUpdate, errMoveAndScale:
			return false
		}
	}
	return true
}

// JetStream API error codes (nats-server's errors.json) Open tells apart.
const (
	errNoPeers               jetstream.ErrorCode = 10005 // no suitable peers for placement
	errInsufficientResources jetstream.ErrorCode = 10023
	errInvalidConfig         jetstream.ErrorCode = 10052
	errStreamUpdate          jetstream.ErrorCode = 10069
	errReplicasNotSupported  jetstream.ErrorCode = 10074 // replicas > 1 on a single server
	errMoveAndScale          jetstream.ErrorCode = 10123
)

// explain adds to a JetStream error what the person who configured the
// stream can do about it.
func explain(err error, o Options, where string) error {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode {
	case errReplicasNotSupported:
		return &settingsError{fmt.Sprintf("stream %s: nats.stream_replicas %d needs a NATS cluster, and %s is a single server: set stream_replicas to 1, or point --nats-url at a cluster (JetStream: %s)",
			StreamName, max(o.StreamReplicas, 1), where, ae.Description)}
	case errNoPeers, errInsufficientResources:
		place := ""
		if o.Placement != nil {
			place = " that match placement " + placementString(&jetstream.Placement{Cluster: o.Placement.Cluster, Tags: o.Placement.Tags})
		}
		return fmt.Errorf("%w: the stream needs as many JetStream servers%s as nats.stream_replicas says (%d), each with room for it (nats.max_bytes), and the cluster has not got them", err, place, max(o.StreamReplicas, 1))
	case errInvalidConfig, errStreamUpdate:
		return &settingsError{fmt.Sprintf("stream %s: JetStream refused the settings in the config's nats section: %s", StreamName, ae.Description)}
	}
	return err
}

// ensureStream creates the events stream, or updates the existing one to
// the settings o gives.
func ensureStream(ctx context.Context, js jetstream.JetStream, o Options, log *slog.Logger, where string) (jetstream.Stream, error) {
	stream, err := js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		cfg := StreamConfig(o)
		stream, err = js.CreateStream(ctx, cfg)
		if err == nil {
			log.Info("created the events stream", "stream", StreamName, "replicas", cfg.Replicas, "placement", placementString(cfg.Placement),
				"max_age", cfg.MaxAge, "max_bytes", cfg.MaxBytes, "max_msgs", cfg.MaxMsgs, "duplicate_window", cfg.Duplicates)
			return stream, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, err
		}
		// Another process created it meanwhile: update it like any other.
		stream, err = js.Stream(ctx, StreamName)
	}
	if err != nil {
		return nil, err
	}
	old := stream.CachedInfo().Config
	want, changes, err := updatedConfig(old, o, where)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return stream, nil
	}
	for _, c := range changes {
		c.log(log)
	}
	stream, err = js.UpdateStream(ctx, want)
	if err != nil {
		return nil, err
	}
	return stream, nil
}

// A change is one stream setting Open changes, named as the config file
// names it.
type change struct {
	setting  string
	from, to any
	warn     string // why this change deserves a warning; "" if none
}

func (c change) log(log *slog.Logger) {
	if c.warn != "" {
		log.Warn("changing a setting of the events stream: "+c.warn, "stream", StreamName, "setting", c.setting, "from", c.from, "to", c.to)
		return
	}
	log.Info("changing a setting of the events stream", "stream", StreamName, "setting", c.setting, "from", c.from, "to", c.to)
}

// updatedConfig is the existing stream's configuration old with the
// settings o gives and what Hindsight needs of its stream, and the changes
// that makes. It refuses what JetStream cannot change.
func updatedConfig(old jetstream.StreamConfig, o Options, where string) (jetstream.StreamConfig, []change, error) {
	if old.Storage != jetstream.FileStorage {
		return old, nil, &settingsError{fmt.Sprintf("stream %s on %s has %s storage, and Hindsight's log of record must be on file storage; JetStream cannot change a stream's storage type: delete the stream (nats stream rm %s; nats stream backup first keeps a copy of its events) and restart Hindsight, which creates it on file storage",
			StreamName, where, strings.ToLower(old.Storage.String()), StreamName)}
	}
	if old.Retention == jetstream.WorkQueuePolicy {
		return old, nil, &settingsError{fmt.Sprintf("stream %s on %s has work-queue retention, which deletes each event once one consumer acknowledges it, so correlators cannot each fold the whole stream; JetStream cannot change a work-queue stream's retention: delete the stream (its events are gone) and restart Hindsight to create it",
			StreamName, where)}
	}
	want, clamped := withSettings(hindsightStream(old), o)
	if clamped && o.DuplicateWindow > 0 {
		return old, nil, &settingsError{fmt.Sprintf("stream %s: nats.duplicate_window %s is longer than the stream's max age %s; JetStream requires the duplicate window to be at most the max age",
			StreamName, o.DuplicateWindow, want.MaxAge)}
	}
	var changes []change
	add := func(setting string, from, to any, warn string) {
		changes = append(changes, change{setting, from, to, warn})
	}
	const lost = "the stream discards its oldest events past the new limit, for good: a correlator that starts from an empty state later cannot fold them"
	if want.Replicas != old.Replicas {
		warn := ""
		if want.Replicas < old.Replicas {
			warn = "fewer replicas survive fewer server failures"
		}
		add("stream_replicas", old.Replicas, want.Replicas, warn)
	}
	if !samePlacement(want.Placement, old.Placement) {
		if want.Replicas != old.Replicas {
			// JetStream refuses to move and scale a stream in one update.
			changes = append(changes, change{"placement", placementString(old.Placement), placementString(old.Placement),
				"JetStream cannot move a stream and change its replicas in one step: the replicas change now; restart Hindsight once the stream is current to move it to " + placementString(want.Placement)})
			want.Placement = clonePlacement(old.Placement)
		} else {
			add("placement", placementString(old.Placement), placementString(want.Placement), "JetStream moves the stream's replicas to the servers the placement selects, copying every event")
		}
	}
	if want.Duplicates != old.Duplicates {
		warn := ""
		if clamped {
			warn = "the duplicate window cannot be longer than the max age"
		}
		add("duplicate_window", old.Duplicates, want.Duplicates, warn)
	}
	if want.MaxAge != old.MaxAge {
		warn := ""
		if want.MaxAge > 0 && (old.MaxAge == 0 || want.MaxAge < old.MaxAge) {
			warn = lost
		}
		add("max_age", durationString(old.MaxAge), durationString(want.MaxAge), warn)
	}
	if want.MaxBytes != old.MaxBytes {
		warn := ""
		if want.MaxBytes > 0 && (old.MaxBytes <= 0 || want.MaxBytes < old.MaxBytes) {
			warn = lost
		}
		add("max_bytes", limitString(old.MaxBytes), limitString(want.MaxBytes), warn)
	}
	if want.MaxMsgs != old.MaxMsgs {
		warn := ""
		if want.MaxMsgs > 0 && (old.MaxMsgs <= 0 || want.MaxMsgs < old.MaxMsgs) {
			warn = lost
		}
		add("max_msgs", limitString(old.MaxMsgs), limitString(want.MaxMsgs), warn)
	}
	if want.Retention != old.Retention {
		add("retention", old.Retention.String(), want.Retention.String(), "Hindsight's log of record keeps events by limits, whatever consumers have acknowledged")
	}
	if want.Discard != old.Discard {
		add("discard", old.Discard.String(), want.Discard.String(), "a full stream must drop its oldest events, not refuse new ones")
	}
	if !slices.Equal(want.Subjects, old.Subjects) {
		add("subjects", old.Subjects, want.Subjects, "")
	}
	if want.MaxMsgSize != old.MaxMsgSize {
		add("max_msg_size", old.MaxMsgSize, want.MaxMsgSize, "")
	}
	return want, changes, nil
}

func clonePlacement(p *jetstream.Placement) *jetstream.Placement {
	if p == nil {
		return nil
	}
	return &jetstream.Placement{Cluster: p.Cluster, Tags: slices.Clone(p.Tags)}
}

// samePlacement compares placements; nil and an empty one are the same
// (JetStream drops an empty one).
func samePlacement(a, b *jetstream.Placement) bool {
	var empty jetstream.Placement
	if a == nil {
		a = &empty
	}
	if b == nil {
		b = &empty
	}
	return a.Cluster == b.Cluster && slices.Equal(a.Tags, b.Tags)
}

func placementString(p *jetstream.Placement) string {
	if p == nil || p.Cluster == "" && len(p.Tags) == 0 {
		return "none"
	}
	var parts []string
	if p.Cluster != "" {
		parts = append(parts, "cluster "+p.Cluster)
	}
	if len(p.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(p.Tags, ","))
	}
	return strings.Join(parts, ", ")
}

func durationString(d time.Duration) string {
	if d <= 0 {
		return "unlimited"
	}
	return d.String()
}

func limitString(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
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

// Publish stores events in the stream and returns once JetStream has
// acknowledged all of them. A lone event is a message with Nats-Msg-Id
// set to its ID; several travel in envelopes (see pack), so that the
// stream syncs once per request rather than once per event. It reports
// how many events the stream already had: a lone event JetStream knew, or
// every event of an envelope it knew (an identical repeat within the
// duplicate window). Every failure wraps hindsight.ErrUnavailable: the
// sender should retry.
func (b *Bus) Publish(ctx context.Context, events []hindsight.Event) (int, error) {
	if err := b.Ready(); err != nil {
		return 0, fmt.Errorf("%w: %v", hindsight.ErrUnavailable, err)
	}
	if len(events) == 0 {
		return 0, nil
	}
	msgs, err := pack(events, b.envelopeLimit())
	if err != nil {
		return 0, err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := b.js.PublishMsgAsync(m.msg, jetstream.WithMsgID(m.id), jetstream.WithExpectStream(StreamName))
		if err != nil {
			return 0, fmt.Errorf("%w: publish %s: %v", hindsight.ErrUnavailable, m.id, err)
		}
		futures = append(futures, f)
	}
	dups := 0
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups += msgs[i].n
			}
		case err := <-f.Err():
			return 0, fmt.Errorf("%w: publish %s: %v", hindsight.ErrUnavailable, msgs[i].id, err)
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: waiting for JetStream to acknowledge: %v", hindsight.ErrUnavailable, ctx.Err())
		}
	}
	return dups, nil
}

// envelopeLimit is the size of an envelope: maxEnvelopeBytes, or half the
// server's max_payload when that is smaller.
func (b *Bus) envelopeLimit() int {
	if mp := int(b.nc.MaxPayload()); mp > 0 && mp/2 < maxEnvelopeBytes {
		return mp / 2
	}
	return maxEnvelopeBytes
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
