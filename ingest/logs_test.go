package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

// logBuffer collects JSON log lines from the server's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogs(t *testing.T) {
	truncated := strings.Replace(string(fixture(t, "01-first-firing.json")), `"truncatedAlerts": 0`, `"truncatedAlerts": 3`, 1)
	partial := mustJSON(t, notification(goodAlert(), alert("pending", "2026-11-22T04:00:00Z", zeroTime, apiLabels, nil)))
	tests := []struct {
		name      string
		publisher *recordingPublisher
		path      string
		body      string
		want      []string // level and message of each line, then key=value pairs
	}{
		{name: "accepted: silent", path: deployPath, body: goodDeploy},
		{name: "rejected request", path: deployPath, body: `{"status":"started"}`, want: []string{"WARN request rejected reason=missing_field status=400 source=deploy"}},
		{name: "rejected alert", path: amPath, body: string(partial), want: []string{"WARN alerts rejected rejected=1 accepted=1 source=alertmanager"}},
		{name: "truncated notification", path: amPath, body: truncated, want: []string{"WARN alertmanager truncated the notification truncated_alerts=3"}},
		{name: "publish failure", path: deployPath, body: goodDeploy, publisher: &recordingPublisher{err: fmt.Errorf("nats: %w", hindsight.ErrUnavailable)}, want: []string{"WARN request failed: broker unavailable source=deploy"}},
		{name: "other failure", path: deployPath, body: goodDeploy, publisher: &recordingPublisher{err: errors.New("boom")}, want: []string{"ERROR request failed source=deploy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			opts := ingest.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			if tc.publisher != nil {
				opts.Publisher = tc.publisher
			}
			srv, _ := newServer(t, opts)
			post(t, srv.URL+tc.path, []byte(tc.body), nil)
			lines := logs.lines(t)
			if len(lines) != len(tc.want) {
				t.Fatalf("%d log lines %v, want %d", len(lines), lines, len(tc.want))
			}
			for i, w := range tc.want {
				fields := strings.Fields(w)
				head := strings.Join(fields[:len(fields)-strings.Count(w, "=")], " ")
				if got := fmt.Sprint(lines[i]["level"], " ", lines[i]["msg"]); got != head {
					t.Errorf("line %d: %q, want %q", i, got, head)
				}
				for _, kv := range fields[len(fields)-strings.Count(w, "="):] {
					k, v, _ := strings.Cut(kv, "=")
					if got := fmt.Sprint(lines[i][k]); got != v {
						t.Errorf("line %d: %s=%s, want %s", i, k, got, v)
					}
				}
			}
		})
	}
}
