package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight/internal/natstest"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// Open brings an existing events stream to the settings it is given and
// leaves alone those it is not given; what JetStream cannot change (or a
// single server cannot do) fails at once with a message saying what to do.
func TestStreamConfigUpdates(t *testing.T) {
	ns := natstest.RunJetStream(t)
	var logs lockedBuffer
	open := func(o natsbus.Options) (*jetstream.StreamConfig, string, error) {
		t.Helper()
		logs.Reset()
		o.Server = ns
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b, err := natsbus.Open(ctx, o)
		if err != nil {
			return nil, logs.String(), err
		}
		defer b.Close()
		return streamConfig(t, ns, natsbus.StreamName), logs.String(), nil
	}
	mustOpen := func(o natsbus.Options) (*jetstream.StreamConfig, string) {
		t.Helper()
		cfg, log, err := open(o)
		if err != nil {
			t.Fatalf("Open(%+v) = %v", o, err)
		}
		return cfg, log
	}
	type limits struct {
		replicas         int
		dup, age         time.Duration
		maxBytes, maxMsg int64
	}
	limitsOf := func(c *jetstream.StreamConfig) limits {
		return limits{c.Replicas, c.Duplicates, c.MaxAge, c.MaxBytes, c.MaxMsgs}
	}

	cfg, _ := mustOpen(natsbus.Options{})
	if got, want := limitsOf(cfg), (limits{1, natsbus.DefaultDuplicateWindow, 0, -1, -1}); got != want {
		t.Fatalf("new stream: %+v, want %+v (the defaults: nothing discarded)", got, want)
	}

	set := natsbus.Options{MaxAge: 48 * time.Hour, MaxBytes: 64 << 20, MaxMsgs: 100_000, DuplicateWindow: 20 * time.Minute}
	cfg, log := mustOpen(set)
	if got, want := limitsOf(cfg), (limits{1, 20 * time.Minute, 48 * time.Hour, 64 << 20, 100_000}); got != want {
		t.Fatalf("after setting limits: %+v, want %+v", got, want)
	}
	for _, setting := range []string{"max_age", "max_bytes", "max_msgs"} {
		if !strings.Contains(log, "level=WARN msg=\"changing a setting of the events stream: the stream discards its oldest events") ||
			!strings.Contains(log, "setting="+setting) {
			t.Errorf("setting %s logged:\n%s\nwant a warning that it discards the oldest events", setting, log)
		}
	}

	// A process whose config leaves the settings out changes nothing.
	cfg, log = mustOpen(natsbus.Options{})
	if got, want := limitsOf(cfg), (limits{1, 20 * time.Minute, 48 * time.Hour, 64 << 20, 100_000}); got != want {
		t.Fatalf("after Open without settings: %+v, want %+v (unchanged)", got, want)
	}
	if strings.Contains(log, "changing") {
		t.Errorf("Open without settings logged changes:\n%s", log)
	}

	// Unlimited lifts the limits.
	cfg, log = mustOpen(natsbus.Options{MaxAge: natsbus.Unlimited, MaxBytes: natsbus.Unlimited, MaxMsgs: natsbus.Unlimited})
	if got, want := limitsOf(cfg), (limits{1, 20 * time.Minute, 0, -1, -1}); got != want {
		t.Fatalf("after lifting the limits: %+v, want %+v", got, want)
	}
	if !strings.Contains(log, "level=INFO msg=\"changing a setting of the events stream\" stream=HINDSIGHT_EVENTS setting=max_age from=48h0m0s to=unlimited") {
		t.Errorf("lifting max_age logged:\n%s", log)
	}

	// A max age below the duplicate window shortens the window, unless the
	// window was asked for too.
	cfg, _ = mustOpen(natsbus.Options{MaxAge: 5 * time.Minute})
	if cfg.Duplicates != 5*time.Minute {
		t.Errorf("max age 5m: duplicate window %s, want 5m", cfg.Duplicates)
	}
	if _, _, err := open(natsbus.Options{MaxAge: 5 * time.Minute, DuplicateWindow: 10 * time.Minute}); err == nil ||
		!strings.Contains(err.Error(), "nats.duplicate_window 10m0s is longer than the stream's max age 5m0s") {
		t.Errorf("duplicate window beyond max age: %v", err)
	}
	mustOpen(natsbus.Options{MaxAge: natsbus.Unlimited, DuplicateWindow: natsbus.DefaultDuplicateWindow})

	// Three replicas on a single server: refused at once, with the way out.
	start := time.Now()
	_, _, err := open(natsbus.Options{StreamReplicas: 3})
	if err == nil || !strings.Contains(err.Error(), "nats.stream_replicas 3 needs a NATS cluster, and the embedded nats-server is a single server: set stream_replicas to 1") {
		t.Errorf("three replicas on one server: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refusing three replicas on one server took %s: it retried what cannot succeed", took)
	}

	// A single server takes a placement, and ignores it: Hindsight says so.
	cfg, log = mustOpen(natsbus.Options{Placement: &natsbus.Placement{Tags: []string{"ssd"}}})
	if !strings.Contains(log, `level=WARN msg="the events stream has a placement, which a single nats-server ignores" stream=HINDSIGHT_EVENTS placement="tags ssd"`) {
		t.Errorf("placement on a single server: stream placement %+v, log:\n%s\nwant a warning that it is ignored", cfg.Placement, log)
	}

	// What JetStream cannot change, on a stream made by hand.
	for _, tc := range []struct {
		name string
		cfg  jetstream.StreamConfig
		want string
	}{
		{"memory storage", jetstream.StreamConfig{Storage: jetstream.MemoryStorage},
			"has memory storage, and Hindsight's log of record must be on file storage; JetStream cannot change a stream's storage type"},
		{"work queue", jetstream.StreamConfig{Retention: jetstream.WorkQueuePolicy},
			"has work-queue retention, which deletes each event once one consumer acknowledges it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.RunJetStream(t)
			tc.cfg.Name, tc.cfg.Subjects = natsbus.StreamName, []string{natsbus.SubjectPrefix + ">"}
			createStream(t, ns, tc.cfg)
			_, err := natsbus.Open(context.Background(), natsbus.Options{Server: ns})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error saying %q", err, tc.want)
			}
		})
	}

	// What it can change, it does, and says so.
	t.Run("interest retention and discard new", func(t *testing.T) {
		ns := natstest.RunJetStream(t)
		createStream(t, ns, jetstream.StreamConfig{Name: natsbus.StreamName, Subjects: []string{"other.>"},
			Retention: jetstream.InterestPolicy, Discard: jetstream.DiscardNew, Replicas: 1})
		var logs lockedBuffer
		b, err := natsbus.Open(context.Background(), natsbus.Options{Server: ns, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		cfg := streamConfig(t, ns, natsbus.StreamName)
		if cfg.Retention != jetstream.LimitsPolicy || cfg.Discard != jetstream.DiscardOld || strings.Join(cfg.Subjects, " ") != "other.> hindsight.events.>" {
			t.Errorf("stream after Open: retention %s, discard %s, subjects %v; want limits, old, and Hindsight's subjects added", cfg.Retention, cfg.Discard, cfg.Subjects)
		}
		for _, s := range []string{"setting=retention from=Interest to=Limits", "setting=discard from=DiscardNew to=DiscardOld", "setting=subjects"} {
			if !strings.Contains(logs.String(), s) {
				t.Errorf("log:\n%s\nwant it to mention %q", logs.String(), s)
			}
		}
	})
}

func streamConfig(t *testing.T, ns *server.Server, name string) *jetstream.StreamConfig {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return &s.CachedInfo().Config
}

func createStream(t *testing.T, ns *server.Server, cfg jetstream.StreamConfig) {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a log destination the test reads while loggers write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
