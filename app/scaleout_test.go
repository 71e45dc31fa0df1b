package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
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

// Scale-out on a three-node NATS cluster: two ingest-only processes take
// webhooks (alternately) and two correlators fold the one stream, each
// into its own bbolt file through its own durable consumer, and serve
// byte-identical incidents. A correlator killed (SIGKILL, a real process)
// leaves the other serving the new events, and catches up on restart;
// then the other correlator and one ingest process go away, the other
// ingest keeps answering 2xx, and that correlator catches up in turn.
// The test logs how long each step took.
func TestScaleOutTwoIngestTwoCorrelators(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a three-node nats-server cluster and the hindsight binary")
	}
	bin := hindsightBinary(t)
	started := time.Now()
	cl := natstest.StartCluster(t, 3)
	clusterUp := time.Since(started)
	logDir := t.TempDir()
	so := &scaleOut{t: t, cl: cl, bin: bin, logDir: logDir}

	// The first ingest process's config sets the stream up for the
	// cluster; the others' files leave the stream settings out.
	const streamMaxBytes = 256 << 20
	ingestA := so.node("ingest-a", []string{app.RoleIngest}, fmt.Sprintf(
		"nats:\n  stream_replicas: 3\n  placement: {cluster: %s}\n  max_bytes: %d\n", natstest.ClusterName, streamMaxBytes))
	ingestB := so.node("ingest-b", []string{app.RoleIngest}, "")
	corrA := so.node("correlate-a", []string{app.RoleCorrelate, app.RoleDraft}, "nats: {consumer: correlate-a}\n")
	corrB := so.node("correlate-b", []string{app.RoleCorrelate, app.RoleDraft}, "nats: {consumer: correlate-b}\n")
	corrB.external = true // a real process, to kill -9
	bootStart := time.Now()
	for _, n := range []*scaleNode{ingestA, ingestB, corrA, corrB} {
		so.start(n)
	}
	booted := time.Since(bootStart)

	info := cl.WaitStreamCurrent(natsbus.StreamName, time.Minute)
	if info.Config.Replicas != 3 || info.Config.Placement == nil || info.Config.Placement.Cluster != natstest.ClusterName ||
		info.Config.MaxBytes != streamMaxBytes || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream %s after four processes started: replicas %d, placement %+v, max bytes %d, cluster %+v; want 3 replicas in cluster %s on 3 servers and max bytes %d, as the first process set them",
			natsbus.StreamName, info.Config.Replicas, info.Config.Placement, info.Config.MaxBytes, info.Cluster, natstest.ClusterName, streamMaxBytes)
	}
	if p := cl.StreamInfo(natsbus.ParkedStreamName).Config; p.Replicas != 3 || p.Placement == nil || p.Placement.Cluster != natstest.ClusterName {
		t.Errorf("stream %s: replicas %d, placement %+v; want the events stream's", natsbus.ParkedStreamName, p.Replicas, p.Placement)
	}
	for _, c := range []string{"correlate-a", "correlate-b"} {
		cl.ConsumerLeader(natsbus.StreamName, c) // fails the test if the consumer is missing
	}

	// Phase 1: every process up.
	sc := newScenario(time.Now().UTC().Add(-20 * time.Hour).Truncate(time.Minute))
	ingests := []*scaleNode{ingestA, ingestB}
	p1 := so.post(sc, 0, 40, ingests)
	caught1 := so.converge("phase 1: all up", corrA, corrB)
	so.requireOnTimelines(corrA, p1.alertIDs, "phase 1")

	// Phase 2: correlator B is killed while events flow; A serves the
	// new events.
	p2 := so.post(sc, 40, 50, ingests)
	so.kill(corrB)
	killedAt, behindAtKill := so.streamLast(), so.applied(corrB)
	p2 = p2.add(so.post(sc, 50, 160, ingests))
	servedBy := time.Now()
	so.waitApplied(corrA, time.Minute)
	so.requireOnTimelines(corrA, p2.alertIDs, "phase 2 (correlator B killed)")
	aServed := time.Since(servedBy)

	// B restarts on its data directory and consumer, and catches up.
	last := so.streamLast()
	bFrom := so.applied(corrB)
	restartB := time.Now()
	so.start(corrB)
	bReady := time.Since(restartB)
	so.waitApplied(corrB, time.Minute)
	bCaughtUp := time.Since(restartB)
	caught2 := so.converge("phase 2: B restarted", corrA, corrB)

	// Phase 3: correlator A and ingest A go away; ingest B keeps answering
	// 2xx and B serves what it takes.
	so.stop(corrA)
	aFrom := so.applied(corrA)
	so.stop(ingestA)
	if code, err := tryPost("http://"+ingestA.addr+"/hooks/deploy", []byte(`{}`)); err == nil {
		t.Errorf("ingest A still answers after Close: %d", code)
	}
	p3 := so.post(sc, 160, 190, []*scaleNode{ingestB})
	so.waitApplied(corrB, time.Minute)
	so.requireOnTimelines(corrB, p3.alertIDs, "phase 3 (correlator A and ingest A down)")

	restartA := time.Now()
	so.start(corrA)
	aReady := time.Since(restartA)
	so.waitApplied(corrA, time.Minute)
	aCaughtUp := time.Since(restartA)
	caught3 := so.converge("phase 3: A restarted", corrA, corrB)
	final := cl.WaitStreamCurrent(natsbus.StreamName, time.Minute)

	// More replicas than the cluster has servers: refused with the reason,
	// and the stream stays as it was.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := natsbus.Open(ctx, natsbus.Options{URL: cl.URLs(), StreamReplicas: 5})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "the stream needs as many JetStream servers as nats.stream_replicas says (5)") {
		t.Errorf("five replicas on three servers: %v", err)
	}
	if r := cl.StreamInfo(natsbus.StreamName).Config.Replicas; r != 3 {
		t.Errorf("replicas %d after a refused change, want 3", r)
	}

	t.Logf("cluster of 3 up in %s; four processes booted in %s; stream %s: %d replicas, placement %s, max bytes %d",
		clusterUp.Round(time.Millisecond), booted.Round(time.Millisecond), natsbus.StreamName, info.Config.Replicas,
		info.Config.Placement.Cluster, info.Config.MaxBytes)
	for _, p := range []struct {
		name string
		r    postResult
	}{{"phase 1, two ingest processes", p1}, {"phase 2, two ingest processes, correlator B killed", p2}, {"phase 3, ingest B alone", p3}} {
		t.Logf("%s: %d requests (%d events, %d of them repeats JetStream deduplicated) in %s, %.0f requests/s; every answer 2xx",
			p.name, p.r.requests, p.r.events, p.r.duplicates, p.r.took.Round(time.Millisecond), float64(p.r.requests)/p.r.took.Seconds())
	}
	t.Logf("phase 1: both correlators applied everything %s after the last post and serve identical incidents (%s)", caught1.took.Round(time.Millisecond), caught1)
	t.Logf("phase 2: correlator B killed (kill -9) with stream seq %d, having acknowledged up to %d; A had applied all of phase 2 (stream seq %d) %s after its last post",
		killedAt, behindAtKill, last, aServed.Round(time.Millisecond))
	t.Logf("phase 2: B restarted %d events behind (applied %d of %d): ready in %s, caught up in %s (%.0f events/s including startup); identical again (%s)",
		last-bFrom, bFrom, last, bReady.Round(time.Millisecond), bCaughtUp.Round(time.Millisecond), float64(last-bFrom)/bCaughtUp.Seconds(), caught2)
	t.Logf("phase 3: A restarted %d events behind: ready in %s, caught up in %s (%.0f events/s including startup; in-process, so under -race when the test is); identical again (%s)",
		final.State.LastSeq-aFrom, aReady.Round(time.Millisecond), aCaughtUp.Round(time.Millisecond), float64(final.State.LastSeq-aFrom)/aCaughtUp.Seconds(), caught3)
	t.Logf("stream: %d events, %d bytes (%d a stored event, per replica)", final.State.Msgs, final.State.Bytes, final.State.Bytes/max(final.State.Msgs, 1))
	t.Logf("total %s", time.Since(started).Round(time.Millisecond))
}

// scaleOut runs the processes of TestScaleOutTwoIngestTwoCorrelators.
type scaleOut struct {
	t      *testing.T
	cl     *natstest.Cluster
	bin    string
	logDir string
}

// scaleNode is one Hindsight process: in-process (app.New) or, when
// external, the hindsight binary.
type scaleNode struct {
	name            string
	roles           []string
	dataDir, config string
	logPath         string
	external        bool
	addr            string

	a       *app.App
	stopped bool // a closed
	cmd     *exec.Cmd
	exited  chan struct{}
}

func (so *scaleOut) node(name string, roles []string, config string) *scaleNode {
	so.t.Helper()
	n := &scaleNode{name: name, roles: roles, dataDir: filepath.Join(so.t.TempDir(), "data"),
		config: filepath.Join(so.logDir, name+".yml"), logPath: filepath.Join(so.logDir, name+".log")}
	if err := os.WriteFile(n.config, []byte(config), 0o600); err != nil {
		so.t.Fatal(err)
	}
	so.t.Cleanup(func() {
		if so.t.Failed() {
			so.t.Logf("%s's log (warnings and errors):\n%s", n.name, grepLog(n.logPath, "level=WARN", "level=ERROR"))
		}
	})
	return n
}

// start starts n (again: on the same data directory, config and, for
// the external one, the same port) and waits until it is ready.
func (so *scaleOut) start(n *scaleNode) {
	t := so.t
	t.Helper()
	if !n.external {
		f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: n.dataDir, NatsURL: so.cl.URLs(),
			Roles: n.roles, ConfigFile: n.config, Logger: slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		if err != nil {
			f.Close()
			t.Fatalf("start %s: %v", n.name, err)
		}
		n.a, n.addr, n.stopped = a, a.Addr(), false
		t.Cleanup(func() {
			a.Close()
			f.Close()
		})
		return
	}
	if n.addr == "" {
		n.addr = fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(so.bin, "serve", "--listen", n.addr, "--data-dir", n.dataDir, "--nats-url", so.cl.URLs(),
		"--roles", strings.Join(n.roles, ","), "--config", n.config, "--log-level", "info")
	cmd.Stdout, cmd.Stderr = f, f
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HINDSIGHT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", n.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		f.Close()
		close(exited)
	}()
	n.cmd, n.exited = cmd, exited
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited while starting: %v\n%s", n.name, cmd.ProcessState, grepLog(n.logPath, "level="))
		default:
		}
		if code, err := tryGet("http://" + n.addr + "/readyz"); err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within a minute:\n%s", n.name, grepLog(n.logPath, "level="))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the external n with SIGKILL.
func (so *scaleOut) kill(n *scaleNode) {
	so.t.Helper()
	if n.cmd == nil {
		so.t.Fatalf("kill %s: not an external process", n.name)
	}
	n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

// stop closes the in-process n.
func (so *scaleOut) stop(n *scaleNode) {
	so.t.Helper()
	if err := n.a.Close(); err != nil {
		so.t.Errorf("close %s: %v", n.name, err)
	}
	n.stopped = true
}

// applied is the last stream sequence n has folded: its bbolt watermark
// in-process; for the external one, its consumer's ack floor (it acks
// once the batch is committed).
func (so *scaleOut) applied(n *scaleNode) uint64 {
	so.t.Helper()
	if !n.external {
		if n.stopped {
			return lastSeqOnDisk(so.t, n.dataDir)
		}
		seq, err := n.a.Store().LastSeq()
		if err != nil {
			so.t.Fatalf("%s: last applied sequence: %v", n.name, err)
		}
		return seq
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := so.cl.JetStream().Consumer(ctx, natsbus.StreamName, n.name)
	if err != nil {
		return 0 // being recreated, from the bbolt watermark
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return 0
	}
	return ci.AckFloor.Stream
}

// lastSeqOnDisk reads the watermark a closed correlator left in its
// bbolt file.
func lastSeqOnDisk(t *testing.T, dataDir string) uint64 {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(dataDir, "hindsight.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seq, err := st.LastSeq()
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func (so *scaleOut) streamLast() uint64 {
	so.t.Helper()
	return so.cl.StreamInfo(natsbus.StreamName).State.LastSeq
}

// waitApplied waits until n has folded everything the stream holds.
func (so *scaleOut) waitApplied(n *scaleNode, limit time.Duration) {
	so.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		last := so.streamLast()
		got := so.applied(n)
		if got >= last {
			return
		}
		if time.Now().After(deadline) {
			so.t.Fatalf("%s applied %d of the stream's %d events within %s", n.name, got, last, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// converged is what converge saw.
type converged struct {
	took      time.Duration
	seq       uint64
	incidents int
	bytes     int
}

func (c converged) String() string {
	return fmt.Sprintf("stream seq %d, %d incidents, %d bytes of JSON from each: every page of the list and every incident by ID", c.seq, c.incidents, c.bytes)
}

// converge waits until both correlators have folded the whole stream
// and, while it stands still, compares what they serve byte for byte.
func (so *scaleOut) converge(what string, a, b *scaleNode) converged {
	t := so.t
	t.Helper()
	start := time.Now()
	deadline := start.Add(time.Minute)
	for {
		last := so.streamLast()
		if so.applied(a) >= last && so.applied(b) >= last {
			sa, sb := so.snapshot(a), so.snapshot(b)
			// Nothing new meanwhile (a clock tick may come any time): the
			// snapshots are of the same stream prefix.
			if so.streamLast() == last && so.applied(a) == last && so.applied(b) == last {
				if !bytes.Equal(sa.raw, sb.raw) {
					t.Fatalf("%s: the correlators serve different incidents at stream seq %d:\n%s", what, last, firstDiff(sa.raw, sb.raw))
				}
				if sa.incidents == 0 {
					t.Fatalf("%s: no incidents", what)
				}
				return converged{took: time.Since(start), seq: last, incidents: sa.incidents, bytes: len(sa.raw)}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the correlators did not both fold the stream (last seq %d) within a minute: applied %d and %d",
				what, so.streamLast(), so.applied(a), so.applied(b))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type snapshot struct {
	raw       []byte
	incidents int
	timeline  map[string]int // event ID -> timeline entries
}

// snapshot reads everything n's API serves: every page of the list (a
// few incidents a page, so the cursors are compared too), then every
// incident by ID.
func (so *scaleOut) snapshot(n *scaleNode) snapshot {
	t := so.t
	t.Helper()
	s := snapshot{timeline: map[string]int{}}
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		url := "http://" + n.addr + "/api/v1/incidents?limit=20"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		r := call(t, "GET", url, "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: GET %s = %d %s", n.name, url, r.status, r.body)
		}
		s.raw = append(s.raw, fmt.Sprintf("--- page %d\n", page)...)
		s.raw = append(s.raw, r.body...)
		// Only what the test reads: decoding whole incidents costs
		// seconds under the race detector.
		var list struct {
			Incidents []struct {
				ID       string
				Timeline []struct{ ID string }
			}
			NextCursor string `json:"next_cursor"`
		}
		r.json(t, &list)
		for _, inc := range list.Incidents {
			ids = append(ids, inc.ID)
			for _, e := range inc.Timeline {
				s.timeline[e.ID]++
			}
		}
		if list.NextCursor == "" {
			break
		}
		cursor = list.NextCursor
	}
	for _, id := range ids {
		r := call(t, "GET", "http://"+n.addr+"/api/v1/incidents/"+id, "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: GET incident %s = %d %s", n.name, id, r.status, r.body)
		}
		s.raw = append(s.raw, "--- "+id+"\n"...)
		s.raw = append(s.raw, r.body...)
	}
	s.incidents = len(ids)
	return s
}

// requireOnTimelines checks that every alert event ingest acknowledged
// is on exactly one timeline entry of what n serves.
func (so *scaleOut) requireOnTimelines(n *scaleNode, ids []string, what string) {
	so.t.Helper()
	s := so.snapshot(n)
	var missing, doubled []string
	for _, id := range ids {
		switch s.timeline[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			doubled = append(doubled, id)
		}
	}
	if len(missing)+len(doubled) > 0 {
		so.t.Fatalf("%s: %s serves %d of %d acknowledged alert events on no timeline (%.3v) and %d on several (%.3v)",
			what, n.name, len(missing), len(ids), missing, len(doubled), doubled)
	}
}

type postResult struct {
	requests, events, duplicates int
	alertIDs                     []string
	took                         time.Duration
}

func (r postResult) add(o postResult) postResult {
	r.requests += o.requests
	r.events += o.events
	r.duplicates += o.duplicates
	r.alertIDs = slices.Compact(slices.Sorted(slices.Values(append(r.alertIDs, o.alertIDs...))))
	r.took += o.took
	return r
}

// post sends rounds [from, to) of the scenario, each request to the next
// of ingests in turn, and requires a 2xx for every one.
func (so *scaleOut) post(sc scenario, from, to int, ingests []*scaleNode) postResult {
	t := so.t
	t.Helper()
	var res postResult
	start := time.Now()
	k := 0
	for i := from; i < to; i++ {
		for _, p := range sc.round(i) {
			n := ingests[k%len(ingests)]
			k++
			r := call(t, "POST", "http://"+n.addr+p.path, "", p.body)
			if r.status/100 != 2 {
				t.Fatalf("POST %s to %s = %d %s, want 2xx", p.path, n.name, r.status, r.body)
			}
			var ack struct {
				Accepted, Duplicates int
				Events               []string
			}
			r.json(t, &ack)
			res.requests++
			res.events += ack.Accepted
			res.duplicates += ack.Duplicates
			if p.path == "/hooks/alertmanager" {
				res.alertIDs = append(res.alertIDs, ack.Events...)
			}
		}
	}
	res.took = time.Since(start)
	slices.Sort(res.alertIDs)
	res.alertIDs = slices.Compact(res.alertIDs)
	return res
}

// scenario is a day of deploys and alerts across a few services: a
// deploy, then two alerts firing on two instances six minutes later,
// repeated by Alertmanager, then resolved (or, every third round, one
// left firing); every fourth deploy is rolled back. A service comes
// round every 36 minutes: after a resolved round its next alerts open a
// new incident, after one left firing they join it.
type scenario struct{ base time.Time }

type scenarioPost struct {
	path string
	body []byte
}

var scenarioServices = []string{"checkout", "payments", "search", "inventory", "shipping", "auth"}

func newScenario(base time.Time) scenario { return scenario{base} }

func (sc scenario) round(i int) []scenarioPost {
	svc := scenarioServices[i%len(scenarioServices)]
	t0 := sc.base.Add(time.Duration(i) * 6 * time.Minute)
	deploy := func(status string, at time.Time) scenarioPost {
		body, _ := json.Marshal(map[string]any{
			"service": svc, "environment": "prod", "version": fmt.Sprintf("v1.%d.0", i), "status": status,
			"time": at, "actor": []string{"alice", "bob", "ci-bot"}[i%3], "commit": fmt.Sprintf("%07x", 0x9f2c1ab+i),
			"url": fmt.Sprintf("https://ci.example.com/%s/%d", svc, i), "labels": map[string]string{"cluster": "eu-1"},
		})
		return scenarioPost{"/hooks/deploy", body}
	}
	startsAt, endsAt := t0.Add(6*time.Minute), t0.Add(22*time.Minute)
	notification := func(status string, resolve func(alertname string) bool) scenarioPost {
		var alerts []map[string]any
		for _, a := range []struct{ name, severity, summary string }{
			{"HighLatency", "critical", "p99 latency above 2s on " + svc},
			{"ErrorRate", "warning", "5xx ratio above 1% on " + svc},
		} {
			for inst := range 2 {
				instance := fmt.Sprintf("%s-%d:8080", svc, inst)
				st, ends := "firing", time.Time{}
				if resolve(a.name) {
					st, ends = "resolved", endsAt
				}
				alerts = append(alerts, map[string]any{
					"status": st, "startsAt": startsAt, "endsAt": ends,
					"fingerprint":  fmt.Sprintf("%x", sha256.Sum256([]byte(svc+a.name+instance)))[:16],
					"generatorURL": "http://prometheus.example:9090/graph?g0.expr=" + a.name,
					"labels": map[string]string{"alertname": a.name, "service": svc, "severity": a.severity, "instance": instance,
						"env": "prod", "cluster": "eu-1", "team": "team-" + svc},
					"annotations": map[string]string{"summary": a.summary, "runbook_url": "https://runbooks.example.com/" + svc},
				})
			}
		}
		body, _ := json.Marshal(map[string]any{"version": "4", "status": status, "receiver": "hindsight",
			"groupKey": fmt.Sprintf("{}:{service=%q}", svc), "groupLabels": map[string]string{"service": svc},
			"externalURL": "http://alertmanager.example:9093", "alerts": alerts, "truncatedAlerts": 0})
		return scenarioPost{"/hooks/alertmanager", body}
	}
	firing := notification("firing", func(string) bool { return false })
	posts := []scenarioPost{deploy("succeeded", t0), firing, firing} // the repeat goes to the other ingest
	if i%4 == 3 {
		posts = append(posts, deploy("rolled_back", t0.Add(15*time.Minute)))
	}
	if i%3 == 2 {
		// ErrorRate stays firing: the service's next round joins it.
		posts = append(posts, notification("firing", func(n string) bool { return n == "HighLatency" }))
	} else {
		posts = append(posts, notification("resolved", func(string) bool { return true }))
	}
	return posts
}

var (
	hindsightOnce sync.Once
	hindsightBin  string
	hindsightErr  error
)

// hindsightBinary builds cmd/hindsight once per test binary.
func hindsightBinary(t *testing.T) string {
	t.Helper()
	hindsightOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hindsight-bin")
		if err != nil {
			hindsightErr = err
			return
		}
		hindsightBin = filepath.Join(dir, "hindsight")
		out, err := exec.Command("go", "build", "-o", hindsightBin, "github.com/hindsight-sre/hindsight/cmd/hindsight").CombinedOutput()
		if err != nil {
			hindsightErr = fmt.Errorf("go build ./cmd/hindsight: %v\n%s", err, out)
		}
	})
	if hindsightErr != nil {
		t.Fatal(hindsightErr)
	}
	return hindsightBin
}

func tryGet(url string) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func tryPost(url string, body []byte) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	res, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// firstDiff shows where two snapshots part.
func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < min(len(la), len(lb)); i++ {
		if la[i] != lb[i] {
			from := max(0, i-5)
			return fmt.Sprintf("line %d:\nA: %s\nB: %s\n(context, from A:)\n%s", i+1, la[i], lb[i], strings.Join(la[from:i+1], "\n"))
		}
	}
	return fmt.Sprintf("one is a prefix of the other: %d and %d lines", len(la), len(lb))
}

// TestMain removes the binary hindsightBinary built, once every test is done.
func TestMain(m *testing.M) {
	code := m.Run()
	if hindsightBin != "" {
		os.RemoveAll(filepath.Dir(hindsightBin))
	}
	os.Exit(code)
}
