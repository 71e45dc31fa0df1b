package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/internal/natstest"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// A three-node NATS cluster on loopback with the events stream on three
// replicas: under load, a follower of the stream is killed and restarted,
// then the stream's leader. Ingest resumes by itself after each (meanwhile
// the hooks answer 503 with Retry-After, never anything else), and every
// event that got a 2xx ends up on exactly one timeline entry. The test logs
// how long each took, and how far and how long the correlator fell behind.
func TestClusterFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a three-node nats-server cluster")
	}
	cl := natstest.StartCluster(t, 3)

	logPath := filepath.Join(t.TempDir(), "hindsight.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() }) // after Hindsight's Close, which logs
	handlers := []slog.Handler{slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})}
	if testing.Verbose() {
		handlers = append(handlers, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a := boot(t, t.TempDir(), "nats: {stream_replicas: 3}\n", func(o *app.Options) {
		o.NatsURL = cl.URLs()
		o.Logger = slog.New(slog.NewMultiHandler(handlers...))
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Hindsight's log (warnings and errors):\n%s", grepLog(logPath, "level=WARN", "level=ERROR"))
		}
	})

	// The stream Hindsight created really is on three servers.
	info := cl.WaitStreamCurrent(natsbus.StreamName, time.Minute)
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream %s: replicas %d, cluster %+v; want 3 replicas on 3 servers", natsbus.StreamName, info.Config.Replicas, info.Cluster)
	}
	if p := cl.StreamInfo(natsbus.ParkedStreamName); p.Config.Replicas != 3 {
		t.Errorf("stream %s: replicas %d, want 3", natsbus.ParkedStreamName, p.Config.Replicas)
	}

	progress := watchApplied(t, a, cl.JetStream())
	load := startClusterLoad(t, "http://"+a.Addr()+"/hooks/alertmanager", 3, loadInterval)
	stopped := false
	defer func() {
		if !stopped {
			load.stop()
		}
	}()
	time.Sleep(time.Second)

	// A follower goes away for ~2s: the leader keeps a quorum, so ingest
	// goes on (a request may see 503 while Hindsight reconnects, if it was
	// connected to that server). The follower killed is the one that leads
	// the correlator's consumer, unless the stream's leader does: so every
	// run makes the consumer change leader once.
	leader := cl.StreamLeader(natsbus.StreamName)
	consumerLeader := cl.ConsumerLeader(natsbus.StreamName, correlatorConsumer)
	follower := (leader + 1) % cl.N()
	if consumerLeader != leader {
		follower = consumerLeader
	}
	t.Logf("stream leader %s, correlator's consumer leader %s, Hindsight connected to %v; killing follower %s",
		cl.Name(leader), cl.Name(consumerLeader), names(cl, cl.ConnectedTo("hindsight")), cl.Name(follower))
	followerKilled := time.Now()
	cl.Kill(follower)
	time.Sleep(2 * time.Second)
	followerResume := load.waitResumed(t, followerKilled, time.Minute, "the follower was killed")
	followerRestart := time.Now()
	cl.Start(follower) // returns once it is healthy: caught up with the stream
	cl.WaitStreamCurrent(natsbus.StreamName, time.Minute)
	followerRejoin := time.Since(followerRestart)

	// The leader goes away: the stream elects a new one; meanwhile the
	// hooks answer 503; ingest resumes by itself.
	leader = cl.StreamLeader(natsbus.StreamName)
	t.Logf("stream leader %s, correlator's consumer leader %s, Hindsight connected to %v; killing the stream leader",
		cl.Name(leader), cl.Name(cl.ConsumerLeader(natsbus.StreamName, correlatorConsumer)), names(cl, cl.ConnectedTo("hindsight")))
	leaderKilled := time.Now()
	cl.Kill(leader)
	leaderResume := load.waitResumed(t, leaderKilled, time.Minute, "the stream leader was killed")
	newLeader := cl.StreamLeader(natsbus.StreamName)
	time.Sleep(2 * time.Second)
	leaderRestart := time.Now()
	cl.Start(leader)
	cl.WaitStreamCurrent(natsbus.StreamName, time.Minute)
	leaderRejoin := time.Since(leaderRestart)
	time.Sleep(500 * time.Millisecond) // some load with all three back
	load.stop()
	stopped = true
	loadStopped := time.Now()
	appliedAtStop, _ := a.Store().LastSeq()
	streamAtStop := cl.StreamInfo(natsbus.StreamName).State.LastSeq

	res := load.results()
	acked := map[string]bool{}
	statuses := map[int]int{}
	errorsSeen := map[string]int{}
	var during503 int
	slowest := map[int]time.Duration{}
	for _, r := range res {
		statuses[r.code]++
		slowest[r.code] = max(slowest[r.code], r.done.Sub(r.sent))
		switch r.code {
		case http.StatusOK:
			for _, id := range r.ids {
				acked[id] = true
			}
		case http.StatusServiceUnavailable:
			errorsSeen[r.msg]++
			if !r.retryAfter {
				t.Errorf("503 without Retry-After: %s", r.msg)
			}
			if r.sent.After(leaderKilled) && r.done.Before(leaderKilled.Add(leaderResume)) {
				during503++
			}
		default:
			errorsSeen[r.msg]++
			t.Errorf("%s: status %d during failover: %s", r.sent.Format("15:04:05.000"), r.code, r.msg)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged")
	}

	// Nothing acknowledged is lost: every acked event is on exactly one
	// timeline entry once the correlator has caught up.
	var missing, doubled int
	deadline := time.Now().Add(90 * time.Second)
	for {
		seen := map[string]int{}
		for _, inc := range incidents(t, a) {
			for _, e := range inc.Timeline {
				seen[e.ID]++
			}
		}
		missing, doubled = 0, 0
		for id := range acked {
			switch n := seen[id]; {
			case n == 0:
				missing++
			case n > 1:
				doubled++
			}
		}
		if missing+doubled == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after 90s: %d acknowledged events on no timeline entry, %d on more than one", missing, doubled)
			logCorrelatorState(t, cl, a)
			progress.stop()
			logStall(t, progress, followerKilled, leaderKilled, loadStopped)
			t.FailNow()
		}
		time.Sleep(250 * time.Millisecond) // the listing is big; leave the CPU to the correlator
	}
	caughtUp := time.Since(loadStopped)
	progress.stop()
	final := cl.WaitStreamCurrent(natsbus.StreamName, time.Minute)
	// Every acknowledged event is on exactly one timeline: checked below
	// (a request's events travel in one message, so messages are fewer).
	if final.State.Msgs < uint64(len(res))-uint64(statuses[503]) {
		t.Errorf("stream holds %d messages, fewer than the %d acknowledged requests", final.State.Msgs, len(res)-statuses[503])
	}

	t.Logf("acknowledged events: %d (requests %d); statuses by code: %v; slowest answer by code: %v", len(acked), len(res), statuses, slowest)
	t.Logf("follower %s killed: ingest resumed %s after the kill; restarted, current and settled again %s after its restart",
		cl.Name(follower), followerResume.Round(time.Millisecond), followerRejoin.Round(time.Millisecond))
	t.Logf("leader %s killed: ingest resumed %s after the kill (new leader %s; %d requests answered 503 meanwhile); old leader restarted, current and settled again %s after its restart",
		cl.Name(leader), leaderResume.Round(time.Millisecond), cl.Name(newLeader), during503, leaderRejoin.Round(time.Millisecond))
	t.Logf("correlator caught up %s after the load stopped (it was %d events behind then); stream %d messages, last seq %d",
		caughtUp.Round(time.Millisecond), streamAtStop-min(streamAtStop, appliedAtStop), final.State.Msgs, final.State.LastSeq)
	logStall(t, progress, followerKilled, leaderKilled, loadStopped)
	for _, m := range sortedCounts(errorsSeen) {
		t.Logf("answer: %s", m)
	}
	for _, m := range sortedCounts(logCounts(logPath)) {
		t.Logf("hindsight log: %s", m)
	}
}

// appliedWatch samples the correlator's last applied stream sequence, the
// stream's last sequence and the correlator's consumer, to find when the
// correlator stood still while behind, and why.
type appliedWatch struct {
	stopCh  chan struct{}
	done    chan struct{}
	samples []appliedSample
}

type appliedSample struct {
	at              time.Time
	applied, stream uint64
	consumer        *jetstream.ConsumerInfo // the latest answer; nil: none
}

func (s appliedSample) String() string {
	out := fmt.Sprintf("%s applied %d of %d", s.at.Format("15:04:05.0"), s.applied, s.stream)
	if ci := s.consumer; ci != nil {
		leader := ""
		if ci.Cluster != nil {
			leader = ci.Cluster.Leader
		}
		out += fmt.Sprintf(" (consumer: leader %s, delivered up to %d, ack floor %d, ack pending %d, redelivered %d, waiting pulls %d)",
			leader, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
	} else {
		out += " (consumer info: the last request got no answer)"
	}
	return out
}

func watchApplied(t *testing.T, a *app.App, js jetstream.JetStream) *appliedWatch {
	w := &appliedWatch{stopCh: make(chan struct{}), done: make(chan struct{})}
	// The broker's side is sampled apart, as its requests may block for
	// seconds during an election; the correlator's sequence is local.
	var mu sync.Mutex
	var streamLast uint64
	var consumer *jetstream.ConsumerInfo
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-w.stopCh:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var last uint64
			if s, err := js.Stream(ctx, natsbus.StreamName); err == nil {
				if info, err := s.Info(ctx); err == nil {
					last = info.State.LastSeq
				}
			}
			var ci *jetstream.ConsumerInfo
			if c, err := js.Consumer(ctx, natsbus.StreamName, correlatorConsumer); err == nil {
				ci, _ = c.Info(ctx)
			}
			cancel()
			mu.Lock()
			streamLast = max(streamLast, last)
			consumer = ci
			mu.Unlock()
		}
	}()
	go func() {
		defer close(w.done)
		defer wg.Wait()
		for {
			select {
			case <-w.stopCh:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if seq, err := a.Store().LastSeq(); err == nil {
				mu.Lock()
				w.samples = append(w.samples, appliedSample{time.Now(), seq, streamLast, consumer})
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *appliedWatch) stop() {
	select {
	case <-w.stopCh:
	default:
		close(w.stopCh)
	}
	<-w.done
}

// longestStall is the longest run of samples in which the correlator made
// no progress while the stream held events it had not applied: the
// sample before the run and the run.
func (w *appliedWatch) longestStall() []appliedSample {
	var longest []appliedSample
	from := -1
	for i, s := range w.samples {
		if i == 0 || s.applied > w.samples[i-1].applied || s.applied >= s.stream {
			from = -1
			continue
		}
		if from < 0 {
			from = i - 1
		}
		if run := w.samples[from : i+1]; len(longest) == 0 || run[len(run)-1].at.Sub(run[0].at) > longest[len(longest)-1].at.Sub(longest[0].at) {
			longest = run
		}
	}
	return longest
}

// loadInterval paces each load worker: at most 30 requests (150 events) a
// second in all, ~1500-2500 events a run. Unpaced, the workers post ~700
// events a second (~12000 a run), and the correlator cannot catch up
// within the 90s allowed: it refolds every event of a key for each batch,
// so under -race a 256-event batch of the three load incidents takes ~2s
// at 4500 events and 6-12s past 10000 (catching up took ~3m50s), and a
// kill of its consumer's leader can add ~30s without deliveries. Paced,
// the test is about the failovers, not the fold's cost.
const loadInterval = 100 * time.Millisecond

// correlatorConsumer is the correlator's durable consumer (nats.consumer
// unset).
const correlatorConsumer = "hindsight-correlate"

// clusterLoad posts Alertmanager notifications from several workers and
// records every answer.
type clusterLoad struct {
	stopCh chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    []loadResult
}

type loadResult struct {
	sent, done time.Time
	code       int // -1: no answer
	retryAfter bool
	msg        string // the error, event IDs elided
	ids        []string
}

var eventIDs = regexp.MustCompile(`\b[adn]-[0-9a-f]{32}\b`)

// startClusterLoad runs workers that each post a notification of 5 alerts
// at most every interval; after an error they wait 50ms.
func startClusterLoad(t *testing.T, url string, workers int, interval time.Duration) *clusterLoad {
	l := &clusterLoad{stopCh: make(chan struct{})}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.stopCh:
					return
				default:
				}
				body, ids := loadNotification(fmt.Sprintf("cw%d-n%d", w, n), base)
				r := loadResult{sent: time.Now(), ids: ids, code: -1}
				res, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					r.msg = err.Error()
				} else {
					data, _ := io.ReadAll(res.Body)
					res.Body.Close()
					r.code, r.retryAfter = res.StatusCode, res.Header.Get("Retry-After") != ""
					if r.code != http.StatusOK {
						r.msg = fmt.Sprintf("%d %s", r.code, eventIDs.ReplaceAllString(strings.TrimSpace(string(data)), "<id>"))
					}
				}
				r.done = time.Now()
				l.mu.Lock()
				l.res = append(l.res, r)
				l.mu.Unlock()
				pause := time.Until(r.sent.Add(interval))
				if r.code != http.StatusOK {
					pause = max(pause, 50*time.Millisecond) // as a sender honouring Retry-After would, but quicker
				}
				select {
				case <-l.stopCh:
					return
				case <-time.After(pause):
				}
			}
		}()
	}
	return l
}

func (l *clusterLoad) stop() {
	close(l.stopCh)
	l.wg.Wait()
}

func (l *clusterLoad) results() []loadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.res)
}

// waitResumed waits until a request sent after since got a 200 and
// returns how long after since that answer came.
func (l *clusterLoad) waitResumed(t *testing.T, since time.Time, limit time.Duration, what string) time.Duration {
	t.Helper()
	deadline := since.Add(limit)
	for {
		l.mu.Lock()
		first := time.Time{}
		for _, r := range l.res {
			if r.code == http.StatusOK && !r.sent.Before(since) && (first.IsZero() || r.done.Before(first)) {
				first = r.done
			}
		}
		l.mu.Unlock()
		if !first.IsZero() {
			return first.Sub(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest did not resume within %s after %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logStall logs the correlator's longest stall while behind, with the
// consumer's state at its start, middle and end.
func logStall(t *testing.T, w *appliedWatch, followerKilled, leaderKilled, loadStopped time.Time) {
	t.Helper()
	run := w.longestStall()
	if len(run) == 0 {
		t.Logf("the correlator never stood still while behind")
		return
	}
	first, last := run[0], run[len(run)-1]
	t.Logf("correlator's longest stall while behind: %s from %s (follower killed at %s, leader at %s, load stopped at %s)",
		last.at.Sub(first.at).Round(time.Millisecond), first.at.Format("15:04:05.000"),
		followerKilled.Format("15:04:05.000"), leaderKilled.Format("15:04:05.000"), loadStopped.Format("15:04:05.000"))
	for _, s := range []appliedSample{first, run[len(run)/2], last} {
		t.Logf("  %s", s)
	}
}

// logCorrelatorState logs where the correlator is against the stream.
func logCorrelatorState(t *testing.T, cl *natstest.Cluster, a *app.App) {
	t.Helper()
	seq, err := a.Store().LastSeq()
	t.Logf("correlator's last applied sequence (bbolt): %d %v", seq, err)
	info := cl.StreamInfo(natsbus.StreamName)
	t.Logf("stream %s: %+v; cluster leader %s", natsbus.StreamName, info.State, info.Cluster.Leader)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cl.JetStream().Consumer(ctx, natsbus.StreamName, correlatorConsumer)
	if err != nil {
		t.Logf("consumer hindsight-correlate: %v", err)
		return
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Logf("consumer hindsight-correlate info: %v", err)
		return
	}
	leader := ""
	if ci.Cluster != nil {
		leader = ci.Cluster.Leader
	}
	t.Logf("consumer hindsight-correlate: created %s, leader %s, delivered %+v, ack floor %+v, ack pending %d, redelivered %d, waiting pulls %d, pending %d",
		ci.Created.Format("15:04:05.000"), leader, ci.Delivered, ci.AckFloor, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.NumPending)
}

func names(cl *natstest.Cluster, idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, cl.Name(i))
	}
	return out
}

func sortedCounts(m map[string]int) []string {
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%dx %s", n, k))
	}
	sort.Strings(out)
	return out
}

var logMsg = regexp.MustCompile(`level=(WARN|ERROR) msg=("(?:[^"\\]|\\.)*"|\S+)`)

// logCounts counts Hindsight's warnings and errors by message.
func logCounts(path string) map[string]int {
	out := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := logMsg.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]+" "+m[2]]++
		}
	}
	return out
}

func grepLog(path string, substrings ...string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		for _, s := range substrings {
			if strings.Contains(line, s) {
				out = append(out, line)
				break
			}
		}
	}
	if len(out) > 200 {
		out = append([]string{fmt.Sprintf("(last 200 of %d lines)", len(out))}, out[len(out)-200:]...)
	}
	return strings.Join(out, "\n")
}
