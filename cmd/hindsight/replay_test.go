package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// replayCandidate groups the shop namespace into one incident, and holds
// search's alerts back until two fire.
const replayCandidate = `correlation:
  rules:
    - name: shop
      match: ['namespace="shop"']
      key: [namespace]
    - name: search-blips
      match: ['service="search"']
      open_after: {alerts: 2}
`

// amAlert is an Alertmanager notification of one alert with labels.
func amAlert(fp string, labels map[string]string, startsAt time.Time, endsAt *time.Time) string {
	status, ends := "firing", "0001-01-01T00:00:00Z"
	if endsAt != nil {
		status, ends = "resolved", endsAt.Format(time.RFC3339)
	}
	alert := map[string]any{"status": status, "labels": labels, "fingerprint": fp,
		"annotations": map[string]string{"summary": labels["alertname"] + " on " + labels["service"]},
		"startsAt":    startsAt.Format(time.RFC3339), "endsAt": ends}
	b, _ := json.Marshal(map[string]any{"version": "4", "status": status, "receiver": "hindsight",
		"groupKey": fmt.Sprintf("{}:{service=%q}", labels["service"]), "externalURL": "http://am:9093",
		"alerts": []any{alert}})
	return string(b)
}

// shopMorning feeds a running Hindsight a morning of two shop services
// and a search blip: checkout's Alertmanager 0.25 captures (two alerts,
// a repeat, the resolution) three hours ago with a deploy before them; a
// payments alert overlapping them, after a payments deploy; and a search
// alert that fired for five minutes. It waits until serve folded it all.
func shopMorning(t *testing.T, a *app.App) {
	t.Helper()
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	var seq int
	seq += postJSON(t, a, "/hooks/deploy", fmt.Sprintf(`{"id":"gh-42","service":"checkout","environment":"prod","version":"v2.3.1","status":"succeeded","time":%q,"actor":"alice"}`,
		at(-12*time.Minute).Format(time.RFC3339)))
	seq += postJSON(t, a, "/hooks/deploy", fmt.Sprintf(`{"id":"gh-77","service":"payments","environment":"prod","version":"v8.1.0","status":"succeeded","time":%q,"actor":"carol"}`,
		at(-40*time.Minute).Format(time.RFC3339)))
	shift := strings.NewReplacer("2026-11-22T04:08:14Z", base.Format(time.RFC3339),
		"2026-11-22T04:09:18Z", at(64*time.Second).Format(time.RFC3339),
		"2026-11-22T04:10:26Z", at(132*time.Second).Format(time.RFC3339))
	for _, f := range []string{"01-first-firing.json", "02-second-alert-joins.json", "03-repeat.json", "04-resolved.json"} {
		b, err := os.ReadFile(filepath.Join(amFixtures, f))
		if err != nil {
			t.Fatal(err)
		}
		seq += postJSON(t, a, "/hooks/alertmanager", shift.Replace(string(b)))
	}
	pay := map[string]string{"alertname": "PaymentErrors", "service": "payments", "namespace": "shop", "severity": "critical"}
	end := at(20 * time.Minute)
	seq += postJSON(t, a, "/hooks/alertmanager", amAlert("pay1", pay, at(time.Minute), nil))
	seq += postJSON(t, a, "/hooks/alertmanager", amAlert("pay1", pay, at(time.Minute), &end))
	search := map[string]string{"alertname": "SearchLatency", "service": "search", "namespace": "search", "severity": "warning"}
	end = at(45 * time.Minute)
	seq += postJSON(t, a, "/hooks/alertmanager", amAlert("srch1", search, at(40*time.Minute), nil))
	seq += postJSON(t, a, "/hooks/alertmanager", amAlert("srch1", search, at(40*time.Minute), &end))
	// Clock ticks may come in between: at least every event posted.
	waitFor(t, "serve to fold everything", func() bool { s, _ := a.Store().LastSeq(); return s >= uint64(seq) })
	if incs, _, _ := a.Store().List(context.Background(), boltstore.ListOptions{}); len(incs) != 3 {
		t.Fatalf("serve has %d incidents, want 3 (checkout, payments, search)", len(incs))
	}
}

// fileState is what must not change of a file: its bytes and mtime.
type fileState struct {
	data  []byte
	mtime time.Time
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{data, fi.ModTime()}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func runReplay(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"replay"}, args...), &out, &errb); code != 0 {
		t.Fatalf("replay %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
	}
	return out.String(), errb.String()
}

func TestReplayWhileServeRuns(t *testing.T) {
	t.Setenv("HINDSIGHT_CONFIG", "")
	dir := t.TempDir()
	a, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	shopMorning(t, a)
	cand := filepath.Join(t.TempDir(), "candidate.yml")
	if err := os.WriteFile(cand, []byte(replayCandidate), 0o600); err != nil {
		t.Fatal(err)
	}

	live := filepath.Join(dir, boltstore.FileName)
	before, names := stateOf(t, live), dirNames(t, dir)
	seqBefore, _ := a.Store().LastSeq()

	text, notes := runReplay(t, "--data-dir", dir, "--config", cand)
	t.Logf("replay printed:\n%s\nand said:\n%s", text, notes)
	if !strings.Contains(notes, "serve runs on "+dir+": reading the stream through its nats-server at nats://127.0.0.1:") {
		t.Errorf("replay did not read through serve's nats-server:\n%s", notes)
	}
	for _, want := range []string{
		"current rules: 3 incidents opened; candidate rules: 1 incident opened (1 held back)\n1 merged, 1 no longer opened, 0 unchanged\n",
		"\nMerged: several current incidents become one (1)\n",
		"[key shop/namespace=shop, rule shop]\n      from ",
		"HighLatency on checkout (+1 more alert)  resolved, 2 alerts [key checkout, default rule]",
		"PaymentErrors on payments  resolved, 1 alert [key payments, default rule]",
		"\nNo longer opened: incidents the candidate holds back or ignores (1)\n",
		"SearchLatency on search  resolved, 1 alert [key search, default rule]\n      candidate rules: suppressed: every alert resolved before open_after (alerts: 2) was met",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}

	js1, _ := runReplay(t, "--data-dir", dir, "--config", cand, "--json")
	js2, _ := runReplay(t, "--data-dir", dir, "--config", cand, "--json")
	if js1 != js2 {
		t.Errorf("two replays of the same stream differ:\n%s\n%s", js1, js2)
	}
	t.Logf("--json printed:\n%s", js1)
	var r correlate.DiffReport
	if err := json.Unmarshal([]byte(js1), &r); err != nil {
		t.Fatal(err)
	}
	want := correlate.DiffCounts{Base: 3, Candidate: 1, CandidateHeld: 1, Merged: 1, NoLongerOpened: 1}
	if r.Counts != want {
		t.Errorf("counts %+v, want %+v", r.Counts, want)
	}
	if len(r.Merged) == 1 {
		m := r.Merged[0]
		var from []string
		for _, f := range m.From {
			from = append(from, f.Service)
		}
		if m.Into.Rule != "shop" || m.Into.Key != "shop/namespace=shop" || m.Into.Alerts != 3 || !slices.Equal(from, []string{"checkout", "payments"}) {
			t.Errorf("merge %+v, want checkout and payments into one shop incident of 3 alerts", m)
		}
	}
	if len(r.NoLongerOpened) == 1 {
		n := r.NoLongerOpened[0]
		if n.Incident.Service != "search" || n.Why != "suppressed" || len(n.Other) != 1 || n.Other[0].Status != hindsight.StatusSuppressed || n.Other[0].Rule != "search-blips" {
			t.Errorf("no longer opened %+v, want search suppressed by rule search-blips", n)
		}
	}

	// Serve's own settings as the candidate: nothing changes. --current
	// defaults to HINDSIGHT_CONFIG, serve's config.
	t.Setenv("HINDSIGHT_CONFIG", cand)
	same, _ := runReplay(t, "--data-dir", dir, "--config", cand)
	if !strings.Contains(same, "no change") {
		t.Errorf("the candidate against itself:\n%s", same)
	}
	t.Setenv("HINDSIGHT_CONFIG", "")
	// --since: the morning was three hours ago.
	recent, notes := runReplay(t, "--data-dir", dir, "--config", cand, "--since", "1h")
	if !strings.Contains(recent, "current rules: 0 incidents opened; candidate rules: 0 incidents opened\nno change") ||
		!strings.Contains(notes, "before --since left out") {
		t.Errorf("--since 1h printed\n%s\nand said\n%s", recent, notes)
	}

	// Nothing of serve's changed: the state file is as it was, unless
	// serve itself folded a clock tick meanwhile; no file was added.
	after, seqAfter := stateOf(t, live), func() uint64 { s, _ := a.Store().LastSeq(); return s }()
	if (!bytes.Equal(after.data, before.data) || !after.mtime.Equal(before.mtime)) && seqAfter == seqBefore {
		t.Errorf("the live state file changed during replay (mtime %v -> %v)", before.mtime, after.mtime)
	}
	if got := dirNames(t, dir); !slices.Equal(got, names) {
		t.Errorf("data directory holds %v after replay, %v before", got, names)
	}

	// Serve stopped: replay runs its own nats-server on the store, and
	// reads the same.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, natsbus.URLFile)); !os.IsNotExist(err) {
		t.Fatalf("nats.url after serve stopped: %v", err)
	}
	js3, notes := runReplay(t, "--data-dir", dir, "--config", cand, "--json")
	if strings.Contains(notes, "serve runs") {
		t.Errorf("replay thinks serve runs:\n%s", notes)
	}
	if js3 != js1 {
		t.Errorf("replay with serve stopped differs:\n%s\nwith serve running:\n%s", js3, js1)
	}

	// --keep leaves both scratch files, folded to the same place.
	keep := filepath.Join(t.TempDir(), "kept")
	runReplay(t, "--data-dir", dir, "--config", cand, "--keep", keep)
	for _, f := range []string{"current.db", "candidate.db"} {
		s, err := boltstore.Open(filepath.Join(keep, f))
		if err != nil {
			t.Fatal(err)
		}
		seq, _ := s.LastSeq()
		s.Close()
		if seq < seqBefore {
			t.Errorf("%s reached sequence %d, want at least %d", f, seq, seqBefore)
		}
	}
}

func TestReplayRefusesWhatItCannotDo(t *testing.T) {
	t.Setenv("HINDSIGHT_CONFIG", "")
	cand := filepath.Join(t.TempDir(), "candidate.yml")
	os.WriteFile(cand, []byte(replayCandidate), 0o600)
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("correlation:\n  rules:\n    - name: x\n      match: ['service=~\"(']\n"), 0o600)
	for _, tc := range []struct {
		name string
		args func(dir string) []string
		code int
		want string
	}{
		{"no --config", func(dir string) []string { return []string{"--data-dir", dir} }, 2, "replay needs --config"},
		{"bad --since", func(dir string) []string { return []string{"--data-dir", dir, "--config", cand, "--since", "a week"} }, 2, `--since "a week": want a Go duration`},
		{"arguments", func(dir string) []string { return []string{"--data-dir", dir, "--config", cand, "now"} }, 2, "takes no arguments"},
		{"--keep in the data directory", func(dir string) []string { return []string{"--data-dir", dir, "--config", cand, "--keep", dir} }, 2, "replay never writes there"},
		{"bad candidate", func(dir string) []string { return []string{"--data-dir", dir, "--config", bad} }, 1, "candidate settings (--config): config " + bad},
		{"missing current", func(dir string) []string {
			return []string{"--data-dir", dir, "--config", cand, "--current", dir + "/none.yml"}
		}, 1, "current settings (--current)"},
		{"no JetStream store", func(dir string) []string { return []string{"--data-dir", dir, "--config", cand} }, 1, "no JetStream store at DIR/jetstream"},
		{"missing data directory", func(dir string) []string { return []string{"--data-dir", dir + "/nope", "--config", cand} }, 1, "data directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"replay"}, tc.args(dir)...), &stdout, &stderr); code != tc.code ||
				!strings.Contains(stderr.String(), strings.ReplaceAll(tc.want, "DIR", dir)) {
				t.Fatalf("exit %d, %s; want %d saying %q", code, stderr.String(), tc.code, tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("printed a report: %s", stdout.String())
			}
		})
	}
}

// Serve holds the data directory without leaving its address: replay
// says what to do instead of starting a second nats-server on the store.
func TestReplayWithoutServeAddress(t *testing.T) {
	t.Setenv("HINDSIGHT_CONFIG", "")
	dir := t.TempDir()
	a, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	os.Remove(filepath.Join(dir, natsbus.URLFile))
	cand := filepath.Join(t.TempDir(), "candidate.yml")
	os.WriteFile(cand, []byte(replayCandidate), 0o600)
	var stderr bytes.Buffer
	if code := run([]string{"replay", "--data-dir", dir, "--config", cand}, io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "LOCK is in use and "+filepath.Join(dir, natsbus.URLFile)+" does not exist") {
		t.Fatalf("exit %d, %s", code, stderr.String())
	}
}

func TestParseSince(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{"72h", 72 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"0d", 0, false},
		{"-2h", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"30", 0, false},
		{"99999999999d", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSince(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseSince(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestSinceFilter(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-24 * time.Hour)
	cfg := correlate.DefaultConfig() // 1h lookback, 10m related window
	wide := correlate.DefaultConfig()
	wide.Rules = []correlate.Rule{{Name: "slow", ChangeLookback: 3 * time.Hour}}
	alert := func(kind hindsight.Kind, starts, at time.Time) *hindsight.Event {
		return &hindsight.Event{Kind: kind, Time: at, Alert: &hindsight.AlertDetails{StartsAt: starts}}
	}
	for _, tc := range []struct {
		name string
		cfgs []correlate.Config
		e    *hindsight.Event
		keep bool
	}{
		{"alert started in the span", []correlate.Config{cfg}, alert(hindsight.KindAlertFiring, cutoff, cutoff), true},
		{"alert started before, resolved in the span", []correlate.Config{cfg}, alert(hindsight.KindAlertResolved, cutoff.Add(-time.Minute), cutoff.Add(time.Hour)), false},
		{"deploy within the lookback before", []correlate.Config{cfg}, &hindsight.Event{Kind: hindsight.KindDeploySucceeded, Time: cutoff.Add(-70 * time.Minute)}, true},
		{"deploy beyond the lookback", []correlate.Config{cfg}, &hindsight.Event{Kind: hindsight.KindDeploySucceeded, Time: cutoff.Add(-71 * time.Minute)}, false},
		{"deploy within a rule's longer lookback", []correlate.Config{cfg, wide}, &hindsight.Event{Kind: hindsight.KindDeploySucceeded, Time: cutoff.Add(-3 * time.Hour)}, true},
		{"note before", []correlate.Config{cfg}, &hindsight.Event{Kind: hindsight.KindNote, Time: cutoff.Add(-time.Second)}, false},
		{"note in the span", []correlate.Config{cfg}, &hindsight.Event{Kind: hindsight.KindNote, Time: cutoff}, true},
		{"old tick", []correlate.Config{cfg}, &hindsight.Event{Kind: hindsight.KindTick, Time: cutoff.Add(-48 * time.Hour)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, keep := sinceFilter(now, 24*time.Hour, tc.cfgs...)
			if !got.Equal(cutoff) {
				t.Fatalf("cutoff %v, want %v", got, cutoff)
			}
			if keep(tc.e) != tc.keep {
				t.Fatalf("keep = %v, want %v", !tc.keep, tc.keep)
			}
		})
	}
}
