package natsbus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/internal/natstest"
	"github.com/hindsight-sre/hindsight/natsbus"
)

func openNotices(t *testing.T, o natsbus.Options) *natsbus.Bus {
	t.Helper()
	b := open(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.OpenNotices(ctx, natsbus.NoticeStreamOptions{}); err != nil {
		t.Fatalf("open notices: %v", err)
	}
	return b
}

func notice(id, change string, seq uint64) hindsight.Notice {
	return hindsight.Notice{Incident: id, Key: "checkout", Change: change, Status: hindsight.StatusOpen,
		Title: "HighLatency on checkout", Service: "checkout", Severity: "critical", Seq: seq}
}

func noticeStream(t *testing.T, b *natsbus.Bus) jetstream.StreamInfo {
	t.Helper()
	js, _ := jetstream.New(b.Conn())
	s, err := js.Stream(context.Background(), natsbus.NoticeStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(natsbus.NoticeSubjectPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	return *info
}

func TestNoticeStreamFollowsEventsStream(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := openNotices(t, natsbus.Options{Server: ns})
	cfg := noticeStream(t, b).Config
	if cfg.Storage != jetstream.FileStorage || cfg.MaxAge != natsbus.DefaultNoticeMaxAge || cfg.Duplicates < 2*time.Minute || cfg.Replicas != 1 ||
		len(cfg.Subjects) != 1 || cfg.Subjects[0] != "hindsight.incidents.>" {
		t.Fatalf("notice stream config = %+v", cfg)
	}
	// Opening again (another process) changes nothing and fails nothing.
	b2 := openNotices(t, natsbus.Options{URL: ns.ClientURL()})
	if err := b2.OpenNotices(context.Background(), natsbus.NoticeStreamOptions{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := noticeStream(t, b2).Config; got.MaxAge != time.Hour || got.Duplicates != time.Hour {
		t.Fatalf("after max age 1h: max_age %s, duplicates %s", got.MaxAge, got.Duplicates)
	}
}

// Two correlator replicas fold the same batch and publish the same
// notices: the stream keeps each once, and a live watcher sees each once.
func TestTwoReplicasPublishANoticeOnce(t *testing.T) {
	ns := natstest.RunJetStream(t)
	r1 := openNotices(t, natsbus.Options{Server: ns, Name: "replica-1"})
	r2 := openNotices(t, natsbus.Options{URL: ns.ClientURL(), Name: "replica-2"})
	watcher := openNotices(t, natsbus.Options{Server: ns})

	var mu sync.Mutex
	var seen []hindsight.Notice
	stop, err := watcher.WatchNotices(context.Background(), func(n hindsight.Notice) {
		mu.Lock()
		seen = append(seen, n)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	watcher.Conn().Flush()

	batch := []hindsight.Notice{notice("inc-1", hindsight.NoticeOpened, 7), notice("inc-2", hindsight.NoticeResolved, 7)}
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, b := range []*natsbus.Bus{r1, r2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.PublishNotices(ctx, batch); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The same change in a later batch is another notice.
	if err := r1.PublishNotices(ctx, []hindsight.Notice{notice("inc-1", hindsight.NoticeUpdated, 9)}); err != nil {
		t.Fatal(err)
	}
	info := noticeStream(t, r1)
	if info.State.Msgs != 3 {
		t.Fatalf("stream holds %d notices, want 3", info.State.Msgs)
	}
	if info.State.NumSubjects != 3 {
		t.Fatalf("stream has %d subjects, want 3 (opened, resolved, updated)", info.State.NumSubjects)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // would a repeat arrive?
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("watcher saw %d notices, want 3: %+v", len(seen), seen)
	}
	if seen[0].Incident != "inc-1" || seen[0].Change != hindsight.NoticeOpened || seen[0].Title != "HighLatency on checkout" {
		t.Fatalf("first notice = %+v", seen[0])
	}
}

func TestNotifierCountsWhatItCannotPublish(t *testing.T) {
	ns := natstest.RunJetStream(t)
	// No notices stream: every publish fails.
	b := open(t, natsbus.Options{Server: ns})
	reg := prometheus.NewRegistry()
	notify := b.Notifier(reg)
	start := time.Now()
	notify(context.Background(), []hindsight.Notice{notice("inc-1", hindsight.NoticeOpened, 1), notice("inc-2", hindsight.NoticeOpened, 1)})
	if d := time.Since(start); d > natsbus.NoticeTimeout+time.Second {
		t.Fatalf("notify took %s, want at most about %s", d, natsbus.NoticeTimeout)
	}
	if got := counterValue(t, reg, "hindsight_notices_failed_total"); got != 2 {
		t.Fatalf("hindsight_notices_failed_total = %v, want 2", got)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestNoticeConsumerRetriesThenGivesUp(t *testing.T) {
	ns := natstest.RunJetStream(t)
	b := openNotices(t, natsbus.Options{Server: ns})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	retry := []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}
	consume, err := b.NoticeConsumer(ctx, "test-sink", retry)
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		incident string
		attempt  int
	}
	calls := make(chan call, 16)
	go consume(ctx, func(_ context.Context, n hindsight.Notice, attempt int) error {
		calls <- call{n.Incident, attempt}
		switch {
		case n.Incident == "flaky" && attempt < 2:
			return errors.New("503")
		case n.Incident == "broken":
			return errors.New("503 forever")
		}
		return nil
	})
	if err := b.PublishNotices(ctx, []hindsight.Notice{notice("flaky", hindsight.NoticeResolved, 1), notice("broken", hindsight.NoticeResolved, 1), notice("fine", hindsight.NoticeResolved, 1)}); err != nil {
		t.Fatal(err)
	}
	got := map[string][]int{}
	timeout := time.After(10 * time.Second)
	for len(got["flaky"]) < 2 || len(got["broken"]) < 3 || len(got["fine"]) < 1 {
		select {
		case c := <-calls:
			got[c.incident] = append(got[c.incident], c.attempt)
		case <-timeout:
			t.Fatalf("calls so far: %v", got)
		}
	}
	select {
	case c := <-calls:
		t.Fatalf("a delivery after the last attempt or after success: %+v (all: %v)", c, got)
	case <-time.After(300 * time.Millisecond):
	}
	if want := []int{1, 2, 3}; len(got["broken"]) != 3 || got["broken"][2] != 3 {
		t.Fatalf("broken delivered at attempts %v, want %v", got["broken"], want)
	}
}
