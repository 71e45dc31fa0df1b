package boltstore_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

// wchar is the bytes this process has passed to write calls so far, or -1
// where /proc/self/io cannot say.
func wchar() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("wchar: ")); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	return -1
}

// growIncident commits an open incident that grows by perBatch alerts
// (an alert and a timeline entry each) in each of batches commits, as
// the correlator does during a storm, and returns the bytes written by
// the first and the last tenth of the commits and the file's size.
func growIncident(t *testing.T, batches, perBatch int) (first, last, size int64) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	inc := hindsight.Incident{ID: "storm", Key: "checkout", Service: "checkout", Title: "storm",
		Status: hindsight.StatusOpen, StartedAt: base, Anchor: "fp-0@" + base.Format(time.RFC3339Nano)}
	tenth := max(1, batches/10)
	var w0 int64
	n := 0
	for b := range batches {
		if b == 0 || b == batches-tenth {
			w0 = wchar()
		}
		var evs []correlate.KeyedEvent
		for range perBatch {
			at := base.Add(time.Duration(n) * time.Second)
			fp := fmt.Sprintf("fp-%d", n%97)
			id := hindsight.AlertEventID(fp, at, "firing")
			labels := map[string]string{"alertname": "HighLatency", "service": "checkout", "instance": fmt.Sprintf("pod-%d", n%97), "severity": "critical"}
			inc.Alerts = append(inc.Alerts, hindsight.AlertSummary{Name: "HighLatency", Fingerprint: fp, Severity: "critical",
				Instance: labels["instance"], Labels: labels, Summary: "p99 latency above 2s", StartsAt: at, ReceivedAt: at})
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{ID: id, Time: at, Kind: hindsight.KindAlertFiring,
				Source: hindsight.SourceAlertmanager, Summary: "p99 latency above 2s", Reason: "same service", Labels: labels,
				URL: "http://prometheus.example/graph?g0.expr=latency"})
			evs = append(evs, correlate.KeyedEvent{Key: "checkout", Event: hindsight.Event{ID: id, Kind: hindsight.KindAlertFiring, Time: at, ReceivedAt: at}})
			n++
		}
		// Each batch hands the store a new incident value, as refold does.
		c := inc
		c.Alerts, c.Timeline = append([]hindsight.AlertSummary(nil), inc.Alerts...), append([]hindsight.TimelineEntry(nil), inc.Timeline...)
		if err := s.Commit(correlate.Change{Seq: uint64(b + 1), Events: evs,
			Keys: []correlate.KeyChange{{Key: "checkout", Incidents: []hindsight.Incident{c}, Replaced: []string{"storm"}}}}); err != nil {
			t.Fatal(err)
		}
		switch b {
		case tenth - 1:
			first = wchar() - w0
		case batches - 1:
			last = wchar() - w0
		}
	}
	size, err = s.Size()
	if err != nil {
		t.Fatal(err)
	}
	return first, last, size
}

// TestCommitCostsTheBatch: a commit writes what the batch changed, not
// the incident it grew. HINDSIGHT_GROWTH_BATCHES sets the number of
// commits (default 300) for a longer measurement.
func TestCommitCostsTheBatch(t *testing.T) {
	if wchar() < 0 {
		t.Skip("no /proc/self/io")
	}
	batches := 300
	if v := os.Getenv("HINDSIGHT_GROWTH_BATCHES"); v != "" {
		batches, _ = strconv.Atoi(v)
	}
	start := time.Now()
	first, last, size := growIncident(t, batches, 10)
	tenth := int64(max(1, batches/10))
	t.Logf("%d batches of 10 alerts: written %d KB per batch in the first tenth, %d KB per batch in the last; file %d KB; %s",
		batches, first/tenth>>10, last/tenth>>10, size>>10, time.Since(start).Round(time.Millisecond))
	if last > 3*first {
		t.Errorf("the last tenth of the commits wrote %d bytes, the first %d: a commit's cost grows with the incident", last, first)
	}
}
