package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/internal/eventgen"
	"github.com/hindsight-sre/hindsight/natsbus"
)

const amFixtures = "../../ingest/testdata/alertmanager-0.25"

// postJSON posts body and returns how many new messages the stream got.
// postJSON posts body and returns how many messages it added to the
// stream: a request's events travel in one message (an envelope), unless
// the stream already had them all.
func postJSON(t *testing.T, a *app.App, path, body string) int {
	t.Helper()
	res, err := http.Post("http://"+a.Addr()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("POST %s = %d %s", path, res.StatusCode, data)
	}
	var r struct{ Accepted, Duplicates int }
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Accepted > r.Duplicates {
		return 1
	}
	return 0
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alertPayload is an Alertmanager notification of one alert on service.
func alertPayload(name, service, fp string, startsAt time.Time, endsAt *time.Time) string {
	status, ends := "firing", "0001-01-01T00:00:00Z"
	if endsAt != nil {
		status, ends = "resolved", endsAt.Format(time.RFC3339)
	}
	return fmt.Sprintf(`{"version":"4","status":%q,"receiver":"hindsight","groupKey":"{}:{service=\"%s\"}","externalURL":"http://am:9093",
"alerts":[{"status":%q,"labels":{"alertname":%q,"service":%q,"severity":"warning","instance":"%s-1:8080"},
"annotations":{"summary":"%s on %s"},"startsAt":%q,"endsAt":%q,"fingerprint":%q}]}`,
		status, service, status, name, service, service, name, service, startsAt.Format(time.RFC3339), ends, fp)
}

// busyDay feeds a running Hindsight what a morning sends it: the
// Alertmanager 0.25 captures (two alerts, a repeat, the resolution)
// moved to three hours ago, a deploy before them and a rollback during
// them, a note, and on another service two incidents that a late alert
// then merges. It waits until everything is folded and returns the
// stream's last sequence.
func busyDay(t *testing.T, a *app.App) uint64 {
	t.Helper()
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	var seq int
	folded := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool { s, _ := a.Store().LastSeq(); return s == uint64(seq) })
	}
	seq += postJSON(t, a, "/hooks/deploy", fmt.Sprintf(`{"id":"gh-42","service":"checkout","environment":"prod","version":"v2.3.1","status":"succeeded","time":%q,"actor":"alice","commit":"9f2c1ab"}`,
		base.Add(-12*time.Minute).Format(time.RFC3339)))
	shift := strings.NewReplacer("2026-11-22T04:08:14Z", base.Format(time.RFC3339),
		"2026-11-22T04:09:18Z", base.Add(64*time.Second).Format(time.RFC3339),
		"2026-11-22T04:10:26Z", base.Add(132*time.Second).Format(time.RFC3339))
	for _, f := range []string{"01-first-firing.json", "02-second-alert-joins.json", "03-repeat.json", "03-repeat.json"} {
		b, err := os.ReadFile(filepath.Join(amFixtures, f))
		if err != nil {
			t.Fatal(err)
		}
		seq += postJSON(t, a, "/hooks/alertmanager", shift.Replace(string(b)))
	}
	folded("the checkout alerts")
	incs, _, _ := a.Store().List(context.Background(), boltstore.ListOptions{Service: "checkout"})
	if len(incs) != 1 {
		t.Fatalf("%d checkout incidents, want 1", len(incs))
	}
	seq += postJSON(t, a, "/api/v1/incidents/"+incs[0].ID+"/notes",
		fmt.Sprintf(`{"text":"Latency started right after v2.3.1; rolling back.","time":%q,"author":"bob"}`, base.Add(90*time.Second).Format(time.RFC3339)))
	seq += postJSON(t, a, "/hooks/deploy", fmt.Sprintf(`{"id":"gh-42","service":"checkout","environment":"prod","version":"v2.3.1","status":"rolled_back","time":%q,"actor":"bob"}`,
		base.Add(100*time.Second).Format(time.RFC3339)))
	b, _ := os.ReadFile(filepath.Join(amFixtures, "04-resolved.json"))
	seq += postJSON(t, a, "/hooks/alertmanager", shift.Replace(string(b)))

	// payments: two incidents 25 minutes apart, folded apart...
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	ptr := func(t time.Time) *time.Time { return &t }
	seq += postJSON(t, a, "/hooks/alertmanager", alertPayload("ErrorRate", "payments", "p1", at(10), nil))
	seq += postJSON(t, a, "/hooks/alertmanager", alertPayload("ErrorRate", "payments", "p1", at(10), ptr(at(15))))
	seq += postJSON(t, a, "/hooks/alertmanager", alertPayload("Saturation", "payments", "p2", at(40), nil))
	seq += postJSON(t, a, "/hooks/alertmanager", alertPayload("Saturation", "payments", "p2", at(40), ptr(at(45))))
	folded("two payments incidents")
	if incs, _, _ := a.Store().List(context.Background(), boltstore.ListOptions{Service: "payments"}); len(incs) != 2 {
		t.Fatalf("%d payments incidents, want 2", len(incs))
	}
	// ...then a late alert that bridges them.
	seq += postJSON(t, a, "/hooks/alertmanager", alertPayload("Latency", "payments", "p3", at(20), ptr(at(35))))
	folded("everything")
	if incs, _, _ := a.Store().List(context.Background(), boltstore.ListOptions{Service: "payments"}); len(incs) != 1 {
		t.Fatalf("%d payments incidents after the bridge, want 1", len(incs))
	}
	return uint64(seq)
}

// state is what a state file holds, as the API serves it.
type state struct {
	incidents map[string]string // ID -> JSON
	redirects map[string]string
	answers   map[string]string // every ID ever handed out -> the ID it answers with now
	seq       uint64
	counts    boltstore.Counts
}

func readState(t *testing.T, path string) state {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	st := state{incidents: map[string]string{}, answers: map[string]string{}}
	incs, next, err := s.List(ctx, boltstore.ListOptions{Limit: 10000})
	if err != nil || next != "" {
		t.Fatalf("list: %v (next %q)", err, next)
	}
	for _, inc := range incs {
		b, _ := json.Marshal(inc)
		st.incidents[inc.ID] = string(b)
	}
	if st.redirects, err = s.Redirects(); err != nil {
		t.Fatal(err)
	}
	for id := range st.incidents {
		st.answers[id] = id
	}
	for id := range st.redirects {
		inc, err := s.Incident(ctx, id)
		if err != nil {
			t.Fatalf("redirect %s: %v", id, err)
		}
		st.answers[id] = inc.ID
	}
	st.seq, _ = s.LastSeq()
	st.counts, _ = s.Counts()
	return st
}

// compare reports how rebuilt differs from orig: the same incidents,
// byte for byte in JSON, the same stream position, and every ID the
// original answers for answering with the same incident.
//
// The redirect tables themselves differ: the live correlator records a
// redirect for an incident a merge removed between two of its batches,
// so its table depends on where its batches ended; rebuild gives every
// ID that could have been handed out (see redirectEveryAnchor), a
// superset that answers the same.
func compare(t *testing.T, orig, rebuilt state) {
	t.Helper()
	if len(rebuilt.incidents) != len(orig.incidents) {
		t.Errorf("rebuilt file has %d incidents, the original %d", len(rebuilt.incidents), len(orig.incidents))
	}
	for id, want := range orig.incidents {
		if got, ok := rebuilt.incidents[id]; !ok {
			t.Errorf("incident %s is missing from the rebuilt file", id)
		} else if got != want {
			t.Errorf("incident %s differs:\nrebuilt  %s\noriginal %s", id, got, want)
		}
	}
	for id, want := range orig.answers {
		if got := rebuilt.answers[id]; got != want {
			t.Errorf("ID %s answers with %q in the rebuilt file, %q in the original", id, got, want)
		}
	}
	for id, to := range orig.redirects {
		if rebuilt.redirects[id] != to {
			t.Logf("redirect %s -> %s of the original is %s -> %q in the rebuilt file", id, to, id, rebuilt.redirects[id])
		}
	}
	if rebuilt.seq != orig.seq {
		t.Errorf("stream position: rebuilt %d, original %d", rebuilt.seq, orig.seq)
	}
	rc, oc := rebuilt.counts, orig.counts
	rc.Redirects, oc.Redirects = 0, 0
	if rc != oc {
		t.Errorf("counts: rebuilt %+v, original %+v", rebuilt.counts, orig.counts)
	}
}

func TestRebuildGivesTheSameState(t *testing.T) {
	dir := t.TempDir()
	a, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	last := busyDay(t, a)

	// Not while serve runs on the data directory.
	var stderr bytes.Buffer
	other := filepath.Join(t.TempDir(), "rebuilt.db")
	if code := run([]string{"rebuild", "--data-dir", dir, "--out", other}, io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "stop `hindsight serve` on "+dir) {
		t.Fatalf("rebuild with serve running: exit %d, %s; want a refusal saying to stop serve", code, stderr.String())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	orig := readState(t, filepath.Join(dir, boltstore.FileName))
	if orig.seq != last || len(orig.redirects) != 1 {
		t.Fatalf("original: seq %d, redirects %v; want %d and one redirect", orig.seq, orig.redirects, last)
	}

	for _, batch := range []string{"1000", "1", "3"} {
		t.Run("batch "+batch, func(t *testing.T) {
			other := filepath.Join(t.TempDir(), "rebuilt.db")
			stderr.Reset()
			if code := run([]string{"rebuild", "--data-dir", dir, "--out", other, "--batch", batch}, io.Discard, &stderr); code != 0 {
				t.Fatalf("rebuild: exit %d\n%s", code, stderr.String())
			}
			t.Logf("rebuild said:\n%s", stderr.String())
			if !regexp.MustCompile(`done: \d+ events .* into 2 incidents .* events/s; wrote ` + regexp.QuoteMeta(other)).MatchString(stderr.String()) {
				t.Errorf("no summary in:\n%s", stderr.String())
			}
			compare(t, orig, readState(t, other))
		})
	}
	t.Run("progress", func(t *testing.T) {
		var stderr bytes.Buffer
		o := rebuildOptions{dataDir: dir, out: filepath.Join(t.TempDir(), "rebuilt.db"), batch: 5}
		if err := rebuild(context.Background(), o, &stderr); err != nil {
			t.Fatal(err)
		}
		// Progress counts stream messages; a notification's events are one.
		for _, want := range []string{"rebuild: folding sequences 1 to ", " (100%) in ", "events/s"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("progress lacks %q:\n%s", want, stderr.String())
			}
		}
	})
	if _, err := os.Stat(filepath.Join(dir, boltstore.FileName)); err != nil {
		t.Fatalf("--out touched the data directory's state file: %v", err)
	}
}

func TestCorrelationConfigFollowsServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yml")
	os.WriteFile(path, []byte("correlation:\n  key_labels: [team]\n  reopen_window: 30m\n"), 0o600)
	cfg, err := app.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cfg.CorrelateConfig()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cc.KeyLabels) != "[team]" || cc.ReopenWindow != 30*time.Minute || cc.ChangeLookback != time.Hour || cc.SeverityLabel != "severity" {
		t.Fatalf("correlation config = %+v", cc)
	}
}

// A damaged state file stops Hindsight with the command that rebuilds it;
// that command brings every incident back, and Hindsight carries on.
func TestDamagedStateFileIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	start := func() (*app.App, error) {
		return app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: dir})
	}
	a, err := start()
	if err != nil {
		t.Fatal(err)
	}
	last := busyDay(t, a)
	a.Close()
	path := filepath.Join(dir, boltstore.FileName)
	orig := readState(t, path)

	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	a, err = start()
	if err == nil {
		a.Close()
		t.Fatal("Hindsight started on a truncated state file")
	}
	if !errors.Is(err, boltstore.ErrNeedsRebuild) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("start on a truncated state file: %v; want an error naming the file and the damage", err)
	}
	t.Log(err)
	// Run the command the error gives, as given.
	m := regexp.MustCompile("run `(hindsight rebuild [^`]*)`").FindStringSubmatch(err.Error())
	if m == nil || m[1] != "hindsight rebuild --data-dir "+dir {
		t.Fatalf("error gives no rebuild command: %v", err)
	}
	var stderr bytes.Buffer
	if code := run(strings.Fields(m[1])[1:], io.Discard, &stderr); code != 0 {
		t.Fatalf("%s: exit %d\n%s", m[1], code, stderr.String())
	}
	t.Logf("rebuild said:\n%s", stderr.String())
	baks, _ := filepath.Glob(path + ".bak-*")
	if len(baks) != 1 {
		t.Fatalf("backups %v, want the damaged file kept once", baks)
	}
	if bak, _ := os.Stat(baks[0]); bak.Size() != fi.Size()/2 {
		t.Fatalf("backup %s has %d bytes, want the damaged file's %d", baks[0], bak.Size(), fi.Size()/2)
	}
	compare(t, orig, readState(t, path))

	// Hindsight starts again and carries on from where the stream was.
	a, err = start()
	if err != nil {
		t.Fatalf("start after rebuild: %v", err)
	}
	defer a.Close()
	postJSON(t, a, "/hooks/alertmanager", alertPayload("DiskFull", "search", "s1", time.Now().Add(-time.Minute), nil))
	waitFor(t, "the next event folded", func() bool { s, _ := a.Store().LastSeq(); return s == last+1 })
	if incs, _, _ := a.Store().List(context.Background(), boltstore.ListOptions{}); len(incs) != len(orig.incidents)+1 {
		t.Fatalf("%d incidents after one more alert, want %d", len(incs), len(orig.incidents)+1)
	}
}

func TestRebuildRefusesWhatItCannotDo(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(dir string) []string
		want string
	}{
		{"no JetStream store", func(dir string) []string { return []string{"--data-dir", dir} }, "no JetStream store at " + "DIR/jetstream"},
		{"missing data directory", func(dir string) []string { return []string{"--data-dir", dir + "/nope"} }, "data directory"},
		{"existing --out", func(dir string) []string {
			os.WriteFile(dir+"/x.db", nil, 0o600)
			return []string{"--data-dir", dir, "--out", dir + "/x.db"}
		}, "DIR/x.db exists"},
		{"bad config", func(dir string) []string { return []string{"--data-dir", dir, "--config", dir + "/none.yml"} }, "read config"},
		{"arguments", func(dir string) []string { return []string{"--data-dir", dir, "now"} }, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stderr bytes.Buffer
			if code := run(append([]string{"rebuild"}, tc.args(dir)...), io.Discard, &stderr); code == 0 ||
				!strings.Contains(stderr.String(), strings.ReplaceAll(tc.want, "DIR", dir)) {
				t.Fatalf("exit %d, %s; want a failure saying %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// TestRebuildSpeed publishes HINDSIGHT_REBUILD_EVENTS generated events
// (skipped when unset) and times rebuild over them, with
// HINDSIGHT_REBUILD_BATCH (default 10000) and 50 services:
//
//	HINDSIGHT_REBUILD_EVENTS=100000 go test -run TestRebuildSpeed -v -timeout 1h ./cmd/hindsight/
//
// With HINDSIGHT_REBUILD_DIR (a new directory) the stream and the rebuilt
// state are left there as a data directory `hindsight serve --data-dir`
// can run on: a store of a million events, to measure serve over.
func TestRebuildSpeed(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HINDSIGHT_REBUILD_EVENTS"))
	if n <= 0 {
		t.Skip("set HINDSIGHT_REBUILD_EVENTS to measure")
	}
	batch := cmpOr(os.Getenv("HINDSIGHT_REBUILD_BATCH"), "10000")
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "rebuilt.db")
	if keep := os.Getenv("HINDSIGHT_REBUILD_DIR"); keep != "" {
		if err := os.Mkdir(keep, 0o700); err != nil {
			t.Fatalf("HINDSIGHT_REBUILD_DIR: %v (want a new directory)", err)
		}
		dir, out = keep, filepath.Join(keep, boltstore.FileName)
	}
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: filepath.Join(dir, "jetstream"), SyncInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	bus, err := natsbus.Open(context.Background(), natsbus.Options{Server: ns})
	if err != nil {
		t.Fatal(err)
	}
	evs := eventgen.Events(n, 50)
	for i := 0; i < len(evs); i += 1000 {
		if _, err := bus.Publish(context.Background(), evs[i:min(i+1000, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	bus.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	var stderr bytes.Buffer
	if code := run([]string{"rebuild", "--data-dir", dir, "--out", out, "--batch", batch}, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	fi, _ := os.Stat(out)
	t.Logf("%d events, --batch %s, %d bytes:\n%s", n, batch, fi.Size(), stderr.String())

	// Reading alone, as rebuild reads (its own nats-server, over TCP):
	// what the fold could go at if it cost nothing, and whether the
	// server cut the reader as a slow consumer.
	rbus, closeStream, err := openStream(context.Background(), streamSource{dataDir: dir, name: "read-alone"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStream()
	start, read := time.Now(), 0
	if err := rbus.Replay(context.Background(), natsbus.ReplayOptions{Batch: 10000}, func(b natsbus.ReplayBatch) error {
		read += len(b.Deliveries)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("reading alone: %d events in %s, %.0f events/s, %d reconnects", read, el.Round(time.Millisecond), float64(read)/el.Seconds(), rbus.Conn().Stats().Reconnects)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
