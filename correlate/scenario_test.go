package correlate_test

// Scenarios: realistic outages, each an event stream in
// testdata/scenarios/<name>.yaml with the incidents it must give.
//
// Every scenario runs twice over: through Config.FoldStream in memory
// (what replay uses), and through the production path, a Correlator over
// a real bbolt file fed in delivery order and then in several shuffled
// orders, in random batches, with some events redelivered. The incidents
// of every run, enriched as the API serves them, must be byte-identical
// JSON, and must match the scenario's expectations.
//
// # Format
//
//	description: what happens, in words
//	day: 2026-11-20          # the day clock times are on (default 2026-11-20)
//	config:                  # optional: correlate.DefaultConfig() with these set
//	  key_labels: [service, job]
//	  reopen_window: 10m
//	  change_lookback: 1h
//	  related_window: 10m
//	  open_after: {alerts: 2, for: 5m}
//	  deploy_labels: {service: app}
//	  shared_labels: [cluster]
//	  rules:                 # correlate.Rule; matchers in Alertmanager syntax
//	    - name: infra
//	      match: ['team="infra"', 'severity=~"critical|page"']
//	      ignore: ['alertname="Watchdog"']
//	      key: [cluster, service]
//	      open_after: {alerts: 2}
//	      # also reopen_window, change_lookback, deploy_labels, shared_labels
//	events:                  # in any order; each kind of entry below
//	  - alert: HighLatency   # alertname; one occurrence of the series its labels name
//	    labels: {service: checkout, severity: critical, instance: "checkout-1:8080"}
//	    summary: p99 above 2s   # the summary annotation (default "<alert> on <service>")
//	    starts: "10:04"      # startsAt, a clock time on day ("10:04" or "10:04:30")
//	    ends: "10:29"        # endsAt: a resolved notification comes too (omit: still firing)
//	    received: +30s       # when the firing notification came: +offset from starts, or a clock time (default +30s)
//	    resolved_received: +1m   # same for the resolved one, from ends (default +30s)
//	    no_firing: true      # the firing notification never came, only the resolved one
//	    repeats: 2           # Alertmanager sent the firing again every 5m (same event ID)
//	    group_key: '{}:{service="checkout"}'  # default from service, else job, else alertname
//	  - deploy: checkout     # the service
//	    version: v2.4.0
//	    status: succeeded    # started, succeeded, failed, rolled_back
//	    env: prod
//	    id: ci-4711          # the pipeline's deploy ID (optional)
//	    labels: {cluster: eu1}
//	    time: "10:00"
//	    received: +5s        # default +5s
//	  - note: rolled back, latency recovering   # a human note on the incident anchored on ...
//	    on: {alert: HighLatency, starts: "10:04"}   # ... that alert occurrence
//	    time: "10:22"
//	  - tick: "11:06"        # a clock tick: event time reached 11:06
//	  - ticks: {from: "11:00", to: "11:10", every: 1m}
//	  - storm:               # one occurrence per alert name and instance
//	      alerts: [HighErrorRate, HighLatency]
//	      instances: 50      # instance label "<service>-<i>:8080"
//	      labels: {service: api, severity: critical}
//	      starts: "10:00"
//	      spread: 2m         # starts spread evenly over this
//	      ends: "10:40"      # omit: still firing
//	      ends_spread: 1m
//	      received: +30s
//	shuffles: 1              # shuffled deliveries through bbolt (default 4, 2 with -short; -scenario.seeds overrides)
//	expect:                  # every incident, pending and suppressed ones too, by start
//	  - key: checkout        # the correlation key (service: checks the service instead)
//	    status: resolved     # open, resolved, pending, suppressed
//	    start: "10:04"
//	    end: "10:29"         # resolved_at; omit while open or pending
//	    detected: "10:04:30" # detected_at, or none
//	    opens_at: "11:05"    # a pending incident's opens_at
//	    severity: critical
//	    title: HighLatency on checkout (+1 more alert)
//	    alerts: 2            # alert occurrences
//	    reopened: 0
//	    lifecycle: ["10:04 opened", "10:29 resolved"]
//	    timeline:            # every entry, in order: "<time> <kind> <alert name | service version | note>"
//	      - 10:00 deploy.succeeded checkout v2.4.0
//	      - 10:04 alert.firing HighLatency
//	    timeline_counts: {alert.firing: 500}   # instead of timeline, for big incidents
//	    top_suspect: checkout v2.4.0   # "<service> <version>", or none
//	    suspects: [checkout v2.4.0, checkout v2.3.9]   # all of them, ranked
//	    suspect_reasons: {checkout v2.4.0: [same service checkout, rolled back at 10:20 UTC]}
//	    suspect_reasons_not: {checkout v2.3.9: [rolled back]}
//	    not_suspected: [search v3.1.0]
//	    related: [{key: payments, shared_change: mesh-config v45}]   # shared_change: none for no shared change
//
// Unset expectations are not checked. Run with -scenario.show to print
// what every scenario gives (a start for a new one's expectations), and
// -scenario.seeds to try more shuffled orders.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

var (
	scenarioSeeds = flag.Int("scenario.seeds", 0, "shuffled delivery orders per scenario through the correlator and bbolt (default 4, 2 with -short)")
	scenarioShow  = flag.Bool("scenario.show", false, "log every scenario's incidents")
)

// scenario is one file of testdata/scenarios.
type scenario struct {
	Description string          `yaml:"description"`
	Day         string          `yaml:"day"`
	Config      *scenarioConfig `yaml:"config"`
	Events      []scenarioEvent `yaml:"events"`
	Expect      []wantIncident  `yaml:"expect"`
	// Shuffles overrides how many shuffled deliveries go through the
	// correlator and bbolt, for a scenario too big for the default.
	Shuffles *int `yaml:"shuffles"`
}

type openAfterSpec struct {
	Alerts int           `yaml:"alerts"`
	For    time.Duration `yaml:"for"`
}

type scenarioConfig struct {
	KeyLabels      []string          `yaml:"key_labels"`
	ReopenWindow   time.Duration     `yaml:"reopen_window"`
	ChangeLookback time.Duration     `yaml:"change_lookback"`
	RelatedWindow  time.Duration     `yaml:"related_window"`
	OpenAfter      openAfterSpec     `yaml:"open_after"`
	DeployLabels   map[string]string `yaml:"deploy_labels"`
	SharedLabels   *[]string         `yaml:"shared_labels"`
	Rules          []ruleSpec        `yaml:"rules"`
}

type ruleSpec struct {
	Name           string            `yaml:"name"`
	Match          []string          `yaml:"match"`
	Ignore         []string          `yaml:"ignore"`
	Key            []string          `yaml:"key"`
	OpenAfter      openAfterSpec     `yaml:"open_after"`
	ReopenWindow   time.Duration     `yaml:"reopen_window"`
	ChangeLookback time.Duration     `yaml:"change_lookback"`
	DeployLabels   map[string]string `yaml:"deploy_labels"`
	SharedLabels   []string          `yaml:"shared_labels"`
}

type scenarioEvent struct {
	// An alert occurrence.
	Alert            string            `yaml:"alert"`
	Labels           map[string]string `yaml:"labels"`
	Summary          string            `yaml:"summary"`
	Starts           string            `yaml:"starts"`
	Ends             string            `yaml:"ends"`
	Received         string            `yaml:"received"`
	ResolvedReceived string            `yaml:"resolved_received"`
	NoFiring         bool              `yaml:"no_firing"`
	Repeats          int               `yaml:"repeats"`
	GroupKey         string            `yaml:"group_key"`
	// A deploy (Labels and Received too).
	Deploy  string `yaml:"deploy"`
	ID      string `yaml:"id"`
	Version string `yaml:"version"`
	Status  string `yaml:"status"`
	Env     string `yaml:"env"`
	Actor   string `yaml:"actor"`
	Time    string `yaml:"time"`
	// A note (Time too).
	Note string `yaml:"note"`
	On   *struct {
		Alert  string `yaml:"alert"`
		Starts string `yaml:"starts"`
	} `yaml:"on"`
	// Clock ticks.
	Tick  string `yaml:"tick"`
	Ticks *struct {
		From  string        `yaml:"from"`
		To    string        `yaml:"to"`
		Every time.Duration `yaml:"every"`
	} `yaml:"ticks"`
	Storm *stormSpec `yaml:"storm"`
}

type stormSpec struct {
	Alerts     []string          `yaml:"alerts"`
	Instances  int               `yaml:"instances"`
	Labels     map[string]string `yaml:"labels"`
	Starts     string            `yaml:"starts"`
	Spread     time.Duration     `yaml:"spread"`
	Ends       string            `yaml:"ends"`
	EndsSpread time.Duration     `yaml:"ends_spread"`
	Received   string            `yaml:"received"`
}

type wantIncident struct {
	Key            string              `yaml:"key"`
	Service        string              `yaml:"service"`
	Status         string              `yaml:"status"`
	Start          string              `yaml:"start"`
	End            string              `yaml:"end"`
	Detected       string              `yaml:"detected"`
	OpensAt        string              `yaml:"opens_at"`
	Severity       string              `yaml:"severity"`
	Title          string              `yaml:"title"`
	Alerts         *int                `yaml:"alerts"`
	Reopened       *int                `yaml:"reopened"`
	Lifecycle      []string            `yaml:"lifecycle"`
	Timeline       []string            `yaml:"timeline"`
	TimelineCounts map[string]int      `yaml:"timeline_counts"`
	TopSuspect     string              `yaml:"top_suspect"`
	Suspects       []string            `yaml:"suspects"`
	SuspectReasons map[string][]string `yaml:"suspect_reasons"`
	// SuspectReasonsNot: what a suspect's reason must not say.
	SuspectReasonsNot map[string][]string `yaml:"suspect_reasons_not"`
	NotSuspected      []string            `yaml:"not_suspected"`
	Related           []struct {
		Key          string `yaml:"key"`
		SharedChange string `yaml:"shared_change"`
	} `yaml:"related"`
}

// loaded is a scenario made ready to run.
type loaded struct {
	scenario
	day    time.Time
	cfg    correlate.Config
	events []hindsight.Event
	// what names each event for the timeline: an alert's name, a
	// deploy's "service version", "note".
	what map[string]string
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/scenarios")
	}
	seeds := *scenarioSeeds
	if seeds == 0 {
		seeds = 4
		if testing.Short() {
			seeds = 2
		}
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc := loadScenario(t, f)
			want := sc.cfg.FoldStream(sc.events)
			if *scenarioShow {
				t.Logf("%s\n%s", sc.Description, describeAll(want, sc))
			}
			checkInvariants(t, want, sc)
			checkExpectations(t, want, sc)
			if again := sc.cfg.FoldStream(sc.events); !bytes.Equal(incidentsJSON(t, again), incidentsJSON(t, want)) {
				t.Errorf("FoldStream twice over the same stream gave different incidents:\n%s", jsonDiff(incidentsJSON(t, again), incidentsJSON(t, want)))
			}
			wantJSON := incidentsJSON(t, want)
			shuffles := seeds
			if sc.Shuffles != nil && *scenarioSeeds == 0 {
				shuffles = *sc.Shuffles
			}
			for seed := range shuffles + 1 {
				order, how := deliveryOrder(sc.events, uint64(seed))
				got := foldThroughStore(t, sc.cfg, order, uint64(seed))
				if gotJSON := incidentsJSON(t, got); !bytes.Equal(gotJSON, wantJSON) {
					t.Errorf("correlator + bbolt, %s, gave other incidents than FoldStream:\n%s\ncorrelator + bbolt:\n%s\nFoldStream:\n%s",
						how, jsonDiff(gotJSON, wantJSON), describeAll(got, sc), describeAll(want, sc))
					return
				}
			}
		})
	}
}

// loadScenario reads a scenario and builds its config and events.
func loadScenario(t *testing.T, path string) *loaded {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc loaded
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sc.scenario); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if sc.Description == "" {
		t.Fatalf("%s: no description: say what the scenario proves", path)
	}
	sc.day = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	if sc.Day != "" {
		if sc.day, err = time.Parse(time.DateOnly, sc.Day); err != nil {
			t.Fatalf("%s: day: %v", path, err)
		}
	}
	if sc.cfg, err = sc.Config.build(); err != nil {
		t.Fatalf("%s: config: %v", path, err)
	}
	sc.what = map[string]string{}
	for i, e := range sc.Events {
		evs, err := sc.expand(e)
		if err != nil {
			t.Fatalf("%s: events[%d]: %v", path, i, err)
		}
		sc.events = append(sc.events, evs...)
	}
	for i := range sc.events {
		if err := sc.events[i].Validate(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return &sc
}

func (c *scenarioConfig) build() (correlate.Config, error) {
	cfg := correlate.DefaultConfig()
	if c == nil {
		return cfg, cfg.Validate()
	}
	if c.KeyLabels != nil {
		cfg.KeyLabels = c.KeyLabels
	}
	if c.ReopenWindow != 0 {
		cfg.ReopenWindow = c.ReopenWindow
	}
	if c.ChangeLookback != 0 {
		cfg.ChangeLookback = c.ChangeLookback
	}
	if c.RelatedWindow != 0 {
		cfg.RelatedWindow = c.RelatedWindow
	}
	cfg.OpenAfter = correlate.OpenAfter(c.OpenAfter)
	cfg.DeployLabels = c.DeployLabels
	if c.SharedLabels != nil {
		cfg.SharedLabels = *c.SharedLabels
	}
	for _, r := range c.Rules {
		rule := correlate.Rule{Name: r.Name, Key: r.Key, OpenAfter: correlate.OpenAfter(r.OpenAfter),
			ReopenWindow: r.ReopenWindow, ChangeLookback: r.ChangeLookback, DeployLabels: r.DeployLabels, SharedLabels: r.SharedLabels}
		var err error
		if rule.Match, err = parseMatchers(r.Match); err != nil {
			return cfg, fmt.Errorf("rule %s: match: %w", r.Name, err)
		}
		if rule.Ignore, err = parseMatchers(r.Ignore); err != nil {
			return cfg, fmt.Errorf("rule %s: ignore: %w", r.Name, err)
		}
		cfg.Rules = append(cfg.Rules, rule)
	}
	return cfg, cfg.Validate()
}

func parseMatchers(ss []string) ([]*labels.Matcher, error) {
	var out []*labels.Matcher
	for _, s := range ss {
		m, err := labels.ParseMatcher(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// clock parses "15:04" or "15:04:05" on the scenario's day.
func (sc *loaded) clock(s string) (time.Time, error) {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if c, err := time.Parse(layout, s); err == nil {
			return sc.day.Add(c.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a clock time like 10:04 or 10:04:30", s)
}

// received parses "+30s" (after base) or a clock time; "" is def after base.
func (sc *loaded) received(s string, base time.Time, def time.Duration) (time.Time, error) {
	switch {
	case s == "":
		return base.Add(def), nil
	case strings.HasPrefix(s, "+"):
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("received: %w", err)
		}
		return base.Add(d), nil
	}
	return sc.clock(s)
}

// groupInterval is how often Alertmanager re-sends a group's firing
// alerts (its group_interval default).
const groupInterval = 5 * time.Minute

func (sc *loaded) expand(e scenarioEvent) ([]hindsight.Event, error) {
	switch {
	case e.Alert != "":
		return sc.alert(e)
	case e.Deploy != "":
		return sc.deploy(e)
	case e.Note != "":
		return sc.note(e)
	case e.Tick != "":
		at, err := sc.clock(e.Tick)
		return []hindsight.Event{tickAt(at)}, err
	case e.Ticks != nil:
		from, err := sc.clock(e.Ticks.From)
		if err != nil {
			return nil, err
		}
		to, err := sc.clock(e.Ticks.To)
		if err != nil || e.Ticks.Every <= 0 {
			return nil, cmp.Or(err, fmt.Errorf("ticks: every must be positive"))
		}
		var out []hindsight.Event
		for at := from; !at.After(to); at = at.Add(e.Ticks.Every) {
			out = append(out, tickAt(at))
		}
		return out, nil
	case e.Storm != nil:
		return sc.storm(*e.Storm)
	}
	return nil, fmt.Errorf("an event needs one of alert, deploy, note, tick, ticks, storm")
}

func tickAt(at time.Time) hindsight.Event {
	return hindsight.Event{ID: hindsight.TickEventID(at), Kind: hindsight.KindTick, Source: hindsight.SourceClock,
		Time: at, ReceivedAt: at, Summary: "clock tick"}
}

func (sc *loaded) alert(e scenarioEvent) ([]hindsight.Event, error) {
	starts, err := sc.clock(e.Starts)
	if err != nil {
		return nil, fmt.Errorf("alert %s: starts: %w", e.Alert, err)
	}
	var ends time.Time
	if e.Ends != "" {
		if ends, err = sc.clock(e.Ends); err != nil {
			return nil, fmt.Errorf("alert %s: ends: %w", e.Alert, err)
		}
	}
	recv, err := sc.received(e.Received, starts, 30*time.Second)
	if err != nil {
		return nil, err
	}
	recvResolved, err := sc.received(e.ResolvedReceived, ends, 30*time.Second)
	if err != nil {
		return nil, err
	}
	a := alertSpec{name: e.Alert, labels: e.Labels, summary: e.Summary, groupKey: e.GroupKey, starts: starts, ends: ends,
		received: recv, resolvedReceived: recvResolved, noFiring: e.NoFiring, repeats: e.Repeats}
	fp := labelFingerprint(a.allLabels())
	sc.what[hindsight.AlertEventID(fp, starts, "firing")] = e.Alert
	sc.what[hindsight.AlertEventID(fp, starts, "resolved")] = e.Alert
	return a.events(), nil
}

// alertSpec is one alert occurrence and how its notifications came.
type alertSpec struct {
	name, summary, groupKey string
	labels                  map[string]string
	starts, ends            time.Time // ends zero: still firing
	received                time.Time // of the firing notification
	resolvedReceived        time.Time
	noFiring                bool
	repeats                 int
}

// events returns the occurrence's events as ingest makes them from
// Alertmanager's notifications (see ingest/alertmanager.go).
func (a alertSpec) events() []hindsight.Event {
	ls := a.allLabels()
	service := cmp.Or(ls["service"], ls["job"])
	annotations := map[string]string{"summary": cmp.Or(a.summary, a.name+" on "+cmp.Or(service, ls["instance"], "unknown"))}
	groupKey := a.groupKey
	if groupKey == "" {
		switch {
		case ls["service"] != "":
			groupKey = fmt.Sprintf(`{}:{service=%q}`, ls["service"])
		case ls["job"] != "":
			groupKey = fmt.Sprintf(`{}:{job=%q}`, ls["job"])
		default:
			groupKey = fmt.Sprintf(`{}:{alertname=%q}`, a.name)
		}
	}
	details := hindsight.AlertDetails{
		Name: a.name, Fingerprint: labelFingerprint(ls), StartsAt: a.starts.UTC(), Annotations: annotations,
		GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=" + a.name, GroupKey: groupKey,
		Receiver: "hindsight", ExternalURL: "http://alertmanager.example:9093",
	}
	firing := hindsight.Event{
		ID: hindsight.AlertEventID(details.Fingerprint, details.StartsAt, "firing"), Kind: hindsight.KindAlertFiring,
		Source: hindsight.SourceAlertmanager, Time: details.StartsAt, ReceivedAt: a.received, Service: service,
		Labels: ls, Summary: annotations["summary"], Alert: &details,
	}
	var out []hindsight.Event
	if !a.noFiring {
		out = append(out, firing)
		for i := range a.repeats {
			r := firing
			r.ReceivedAt = a.received.Add(time.Duration(i+1) * groupInterval)
			out = append(out, r)
		}
	}
	if !a.ends.IsZero() {
		rd := details
		rd.EndsAt = a.ends.UTC()
		r := firing
		r.ID, r.Kind, r.Time, r.ReceivedAt, r.Alert = hindsight.AlertEventID(details.Fingerprint, details.StartsAt, "resolved"),
			hindsight.KindAlertResolved, rd.EndsAt, a.resolvedReceived, &rd
		out = append(out, r)
	}
	return out
}

// allLabels are the alert's labels, alertname included.
func (a alertSpec) allLabels() map[string]string {
	ls := map[string]string{"alertname": a.name}
	for k, v := range a.labels {
		ls[k] = v
	}
	return ls
}

// labelFingerprint is Alertmanager's fingerprint of a label set.
func labelFingerprint(ls map[string]string) string {
	set := make(model.LabelSet, len(ls))
	for k, v := range ls {
		set[model.LabelName(k)] = model.LabelValue(v)
	}
	return set.Fingerprint().String()
}

func (sc *loaded) deploy(e scenarioEvent) ([]hindsight.Event, error) {
	at, err := sc.clock(e.Time)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: time: %w", e.Deploy, err)
	}
	recv, err := sc.received(e.Received, at, 5*time.Second)
	if err != nil {
		return nil, err
	}
	ev := deployEvent(deploySpec{service: e.Deploy, id: e.ID, version: e.Version, status: e.Status, env: e.Env,
		actor: e.Actor, labels: e.Labels, at: at, received: recv})
	sc.what[ev.ID] = strings.TrimSpace(e.Deploy + " " + e.Version)
	return []hindsight.Event{ev}, nil
}

type deploySpec struct {
	service, id, version, status, env, actor string
	labels                                   map[string]string
	at, received                             time.Time
}

// deployEvent is the event ingest makes of a deploy webhook (see
// ingest/deploy.go).
func deployEvent(s deploySpec) hindsight.Event {
	d := hindsight.DeployDetails{ID: s.id, Environment: s.env, Version: s.version, Status: s.status, Actor: s.actor,
		URL: "https://ci.example.com/" + s.service + "/" + s.version}
	kind, _ := hindsight.DeployKind(s.status)
	ls := map[string]string{"service": s.service}
	for k, v := range s.labels {
		ls[k] = v
	}
	if s.env != "" {
		ls["environment"] = s.env
	}
	summary := "Deploy of " + s.service
	if s.version != "" {
		summary += " " + s.version
	}
	if s.env != "" {
		summary += " to " + s.env
	}
	summary += " " + strings.ReplaceAll(s.status, "_", " ")
	return hindsight.Event{ID: hindsight.DeployEventID(d, s.service, s.at), Kind: kind, Source: hindsight.SourceDeploy,
		Time: s.at.UTC(), ReceivedAt: s.received, Service: s.service, Labels: ls, Summary: summary, Deploy: &d}
}

func (sc *loaded) note(e scenarioEvent) ([]hindsight.Event, error) {
	at, err := sc.clock(e.Time)
	if err != nil {
		return nil, fmt.Errorf("note: time: %w", err)
	}
	if e.On == nil {
		return nil, fmt.Errorf("note: on: name the alert occurrence of the incident it was written on")
	}
	// The incident the human wrote on: the one holding that occurrence.
	var on *hindsight.Event
	for _, x := range sc.Events {
		if x.Alert == e.On.Alert && x.Starts == e.On.Starts {
			evs, err := sc.alert(x)
			if err != nil {
				return nil, err
			}
			on = &evs[len(evs)-1]
		}
	}
	if on == nil {
		return nil, fmt.Errorf("note: no alert %s starting at %s", e.On.Alert, e.On.Starts)
	}
	key := sc.cfg.Place(on).Key
	h := sha256.Sum256([]byte(e.Note + "\x00" + at.String()))
	ev := hindsight.Event{ID: "n-" + hex.EncodeToString(h[:8]), Kind: hindsight.KindNote, Source: hindsight.SourceNote,
		Time: at, ReceivedAt: at, Summary: e.Note,
		Note: &hindsight.NoteDetails{IncidentID: correlate.IncidentID(key, on.Alert.OccurrenceID()), Key: key, Anchor: on.Alert.OccurrenceID(), Text: e.Note, Author: "alice"}}
	sc.what[ev.ID] = "note"
	return []hindsight.Event{ev}, nil
}

func (sc *loaded) storm(s stormSpec) ([]hindsight.Event, error) {
	starts, err := sc.clock(s.Starts)
	if err != nil {
		return nil, fmt.Errorf("storm: starts: %w", err)
	}
	var ends time.Time
	if s.Ends != "" {
		if ends, err = sc.clock(s.Ends); err != nil {
			return nil, fmt.Errorf("storm: ends: %w", err)
		}
	}
	n := len(s.Alerts) * s.Instances
	if n == 0 {
		return nil, fmt.Errorf("storm: name alerts and a number of instances")
	}
	service := cmp.Or(s.Labels["service"], s.Labels["job"], "svc")
	var out []hindsight.Event
	for i := range s.Instances {
		for j, name := range s.Alerts {
			k := i*len(s.Alerts) + j
			ls := map[string]string{"instance": fmt.Sprintf("%s-%d:8080", service, i)}
			for l, v := range s.Labels {
				ls[l] = v
			}
			a := alertSpec{name: name, labels: ls, starts: starts.Add(s.Spread * time.Duration(k) / time.Duration(n))}
			if a.received, err = sc.received(s.Received, a.starts, 30*time.Second); err != nil {
				return nil, err
			}
			if !ends.IsZero() {
				a.ends = ends.Add(s.EndsSpread * time.Duration(k) / time.Duration(n))
				a.resolvedReceived = a.ends.Add(30 * time.Second)
			}
			fp := labelFingerprint(a.allLabels())
			sc.what[hindsight.AlertEventID(fp, a.starts, "firing")] = name
			sc.what[hindsight.AlertEventID(fp, a.starts, "resolved")] = name
			out = append(out, a.events()...)
		}
	}
	return out, nil
}

// deliveryOrder returns the events in the order of a delivery: seed 0 as
// they were received, other seeds shuffled, with some events delivered
// twice (JetStream redeliveries).
func deliveryOrder(events []hindsight.Event, seed uint64) ([]hindsight.Event, string) {
	out := slices.Clone(events)
	if seed == 0 {
		slices.SortStableFunc(out, func(a, b hindsight.Event) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
		return out, "delivered as received"
	}
	rng := rand.New(rand.NewPCG(seed, 0x5ce7a110))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for range len(out) / 10 {
		e := out[rng.IntN(len(out))]
		at := rng.IntN(len(out) + 1)
		out = slices.Insert(out, at, e)
	}
	return out, fmt.Sprintf("shuffled with seed %d", seed)
}

// foldThroughStore runs events through the production path: a
// Correlator over a fresh bbolt file, in random batches, then reads every
// incident back and enriches it as the API does.
func foldThroughStore(t testing.TB, cfg correlate.Config, events []hindsight.Event, seed uint64) []hindsight.Incident {
	t.Helper()
	store := openStore(t)
	rec := &recordingStore{Store: store, ids: map[string]bool{}}
	c, err := correlate.New(cfg, rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0xba7c4))
	ctx := context.Background()
	var seq uint64
	// Batches of up to a quarter of the stream, so every stream goes
	// through a few intermediate states; the consumer takes what is
	// waiting, up to 256.
	most := max(4, min(256, len(events)/4))
	for len(events) > 0 {
		n := min(len(events), 1+rng.IntN(most))
		seq += uint64(n)
		if err := c.Apply(ctx, events[:n], seq); err != nil {
			t.Fatalf("apply batch ending at %d: %v", seq, err)
		}
		events = events[n:]
	}
	incs := readIncidents(t, cfg, store)
	// Every ID the store ever served still answers, with the incident
	// that took it over when a merge or an earlier alert re-anchored it.
	final := map[string]bool{}
	for _, inc := range incs {
		final[inc.ID] = true
	}
	for id := range rec.ids {
		inc, err := store.Incident(ctx, id)
		if err != nil || !final[inc.ID] {
			t.Errorf("incident %s, served after an earlier batch, no longer answers: %v", id, err)
		}
	}
	return incs
}

// openStore opens a fresh bbolt state file, closed when the test ends.
func openStore(t testing.TB) *boltstore.Store {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// recordingStore notes the ID of every incident committed.
type recordingStore struct {
	*boltstore.Store
	ids map[string]bool
}

func (s *recordingStore) Commit(c correlate.Change) error {
	for _, kc := range c.Keys {
		for _, inc := range kc.Incidents {
			s.ids[inc.ID] = true
		}
	}
	return s.Store.Commit(c)
}

// storeHorizon bounds reads of every incident: within UnixNano's range,
// as bbolt's time keys need.
var storeHorizon = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// readIncidents reads every incident of the store and enriches it.
func readIncidents(t testing.TB, cfg correlate.Config, store *boltstore.Store) []hindsight.Incident {
	t.Helper()
	incs, err := store.StartedBetween(time.Time{}, storeHorizon)
	if err != nil {
		t.Fatal(err)
	}
	for i := range incs {
		if err := cfg.EnrichFrom(store, &incs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return incs
}

func incidentsJSON(t testing.TB, incs []hindsight.Incident) []byte {
	t.Helper()
	if incs == nil {
		incs = []hindsight.Incident{}
	}
	b, err := json.MarshalIndent(incs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonDiff shows where two indented JSON documents first differ.
func jsonDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	from := max(0, i-6)
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d of the JSON:\n", i+1)
	for j := from; j < i; j++ {
		fmt.Fprintf(&b, "    %s\n", g[j])
	}
	for j := i; j < min(i+4, len(g)); j++ {
		fmt.Fprintf(&b, "got %s\n", g[j])
	}
	for j := i; j < min(i+4, len(w)); j++ {
		fmt.Fprintf(&b, "want%s\n", w[j])
	}
	return b.String()
}

// clockOf prints t as the scenarios write it.
func (sc *loaded) clockOf(t time.Time) string {
	t = t.UTC()
	layout := "15:04"
	if t.Second() != 0 || t.Nanosecond() != 0 {
		layout = "15:04:05.999999999"
	}
	if d := t.Truncate(24 * time.Hour); !d.Equal(sc.day) {
		layout = "2006-01-02 " + layout
	}
	return t.Format(layout)
}

func (sc *loaded) clockOfPtr(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return sc.clockOf(*t)
}

// entryLine is a timeline entry as the scenarios write it.
func (sc *loaded) entryLine(e hindsight.TimelineEntry) string {
	return fmt.Sprintf("%s %s %s", sc.clockOf(e.Time), e.Kind, cmp.Or(sc.what[e.ID], e.ID))
}

func (sc *loaded) changeName(s hindsight.SuspectedChange) string {
	return cmp.Or(sc.what[s.EventID], s.Service+" "+s.Version)
}

// describe prints an incident for a human reading a failure.
func (sc *loaded) describe(inc *hindsight.Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s key=%s service=%s [%s] %s–%s severity=%s alerts=%d reopened=%d detected=%s",
		inc.ID, inc.Key, inc.Service, inc.Status, sc.clockOf(inc.StartedAt), sc.clockOfPtr(inc.ResolvedAt), inc.Severity,
		len(inc.Alerts), inc.Reopened, sc.clockOfPtr(inc.DetectedAt))
	if inc.OpensAt != nil {
		fmt.Fprintf(&b, " opens_at=%s", sc.clockOf(*inc.OpensAt))
	}
	fmt.Fprintf(&b, "\n  title: %s\n  lifecycle:\n", inc.Title)
	for _, l := range inc.Lifecycle {
		fmt.Fprintf(&b, "    %s %s — %s\n", sc.clockOf(l.Time), l.Status, l.Reason)
	}
	fmt.Fprintf(&b, "  timeline (%d entries):\n", len(inc.Timeline))
	for i, e := range inc.Timeline {
		if i == 12 && len(inc.Timeline) > 16 {
			fmt.Fprintf(&b, "    … %d more\n", len(inc.Timeline)-14)
			continue
		}
		if i > 12 && i < len(inc.Timeline)-2 && len(inc.Timeline) > 16 {
			continue
		}
		mark := ""
		if e.Detection {
			mark = " [detection]"
		}
		fmt.Fprintf(&b, "    %s%s — %s\n", sc.entryLine(e), mark, e.Reason)
	}
	if len(inc.SuspectedChanges) == 0 {
		b.WriteString("  suspects: none\n")
	}
	for i, s := range inc.SuspectedChanges {
		fmt.Fprintf(&b, "  suspect %d: %s (score %.3f): %s\n", i+1, sc.changeName(s), s.Score, s.Reason)
	}
	for _, r := range inc.Related {
		fmt.Fprintf(&b, "  related: %s %s shared_change=%s — %s\n", r.ID, r.Service, cmp.Or(sc.what[r.SharedChange], "none"), r.Reason)
	}
	return b.String()
}

func describeAll(incs []hindsight.Incident, sc *loaded) string {
	if len(incs) == 0 {
		return "  (no incidents)\n"
	}
	var b strings.Builder
	for i := range incs {
		fmt.Fprintf(&b, "#%d %s", i+1, sc.describe(&incs[i]))
	}
	return b.String()
}

// checkExpectations compares the incidents with the scenario's expect.
func checkExpectations(t *testing.T, got []hindsight.Incident, sc *loaded) {
	t.Helper()
	if len(got) != len(sc.Expect) {
		t.Errorf("got %d incidents, want %d; got:\n%s", len(got), len(sc.Expect), describeAll(got, sc))
		return
	}
	for i, w := range sc.Expect {
		inc := &got[i]
		var errs []string
		fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
		eq := func(field, got, want string) {
			if want != "" && got != want {
				fail("%s = %q, want %q", field, got, want)
			}
		}
		eq("key", inc.Key, w.Key)
		eq("service", inc.Service, w.Service)
		eq("status", string(inc.Status), w.Status)
		eq("start", sc.clockOf(inc.StartedAt), w.Start)
		eq("detected", sc.clockOfPtr(inc.DetectedAt), w.Detected)
		eq("opens_at", sc.clockOfPtr(inc.OpensAt), w.OpensAt)
		eq("severity", inc.Severity, w.Severity)
		eq("title", inc.Title, w.Title)
		end := sc.clockOfPtr(inc.ResolvedAt)
		switch {
		case w.End != "":
			eq("end", end, w.End)
		case w.Status == "open" || w.Status == "pending":
			eq("end", end, "none")
		}
		if w.Alerts != nil && len(inc.Alerts) != *w.Alerts {
			fail("alerts = %d, want %d", len(inc.Alerts), *w.Alerts)
		}
		if w.Reopened != nil && inc.Reopened != *w.Reopened {
			fail("reopened = %d, want %d", inc.Reopened, *w.Reopened)
		}
		if w.Lifecycle != nil {
			var lc []string
			for _, l := range inc.Lifecycle {
				lc = append(lc, sc.clockOf(l.Time)+" "+l.Status)
			}
			if !slices.Equal(lc, w.Lifecycle) {
				fail("lifecycle = %q,\n    want %q", lc, w.Lifecycle)
			}
		}
		if w.Timeline != nil {
			var tl []string
			for _, e := range inc.Timeline {
				tl = append(tl, sc.entryLine(e))
			}
			if !slices.Equal(tl, w.Timeline) {
				fail("timeline =\n      %s\n    want\n      %s", strings.Join(tl, "\n      "), strings.Join(w.Timeline, "\n      "))
			}
		}
		if w.TimelineCounts != nil {
			counts := map[string]int{}
			for _, e := range inc.Timeline {
				counts[string(e.Kind)]++
			}
			if !reflect.DeepEqual(counts, w.TimelineCounts) {
				fail("timeline counts = %v, want %v", counts, w.TimelineCounts)
			}
		}
		var suspects []string
		for _, s := range inc.SuspectedChanges {
			suspects = append(suspects, sc.changeName(s))
		}
		top := "none"
		if len(suspects) > 0 {
			top = suspects[0]
		}
		eq("top suspect", top, w.TopSuspect)
		if w.Suspects != nil && !slices.Equal(suspects, w.Suspects) {
			fail("suspects = %q, want %q", suspects, w.Suspects)
		}
		for _, n := range w.NotSuspected {
			if slices.Contains(suspects, n) {
				fail("%s is suspected, and must not be", n)
			}
		}
		for name, parts := range w.SuspectReasons {
			k := slices.Index(suspects, name)
			if k < 0 {
				fail("suspect_reasons: %s is not a suspect", name)
				continue
			}
			for _, p := range parts {
				if !strings.Contains(inc.SuspectedChanges[k].Reason, p) {
					fail("reason for %s = %q, want it to say %q", name, inc.SuspectedChanges[k].Reason, p)
				}
			}
		}
		for name, parts := range w.SuspectReasonsNot {
			k := slices.Index(suspects, name)
			for _, p := range parts {
				if k >= 0 && strings.Contains(inc.SuspectedChanges[k].Reason, p) {
					fail("reason for %s = %q, and must not say %q", name, inc.SuspectedChanges[k].Reason, p)
				}
			}
		}
		if w.Related != nil {
			var gotRel, wantRel []string
			keyOf := map[string]string{}
			for _, o := range got {
				keyOf[o.ID] = o.Key
			}
			for _, r := range inc.Related {
				gotRel = append(gotRel, keyOf[r.ID]+" shared "+cmp.Or(sc.what[r.SharedChange], r.SharedChange, "none"))
			}
			for _, r := range w.Related {
				wantRel = append(wantRel, r.Key+" shared "+cmp.Or(r.SharedChange, "none"))
			}
			if !slices.Equal(gotRel, wantRel) {
				fail("related = %q, want %q", gotRel, wantRel)
			}
		}
		if len(errs) > 0 {
			t.Errorf("incident #%d:\n  %s\ngot:\n%s", i+1, strings.Join(errs, "\n  "), sc.describe(inc))
		}
	}
}

// checkInvariants checks what holds of every incident of every scenario.
func checkInvariants(t *testing.T, incs []hindsight.Incident, sc *loaded) {
	t.Helper()
	for i := range incs {
		inc := &incs[i]
		var errs []string
		if want := correlate.IncidentID(inc.Key, inc.Anchor); inc.ID != want {
			errs = append(errs, fmt.Sprintf("id %s is not derived from key %q and anchor %s (%s)", inc.ID, inc.Key, inc.Anchor, want))
		}
		if len(inc.Alerts) > 0 && occurrenceID(inc.Alerts[0]) != inc.Anchor {
			errs = append(errs, fmt.Sprintf("anchor %s is not the earliest alert %s", inc.Anchor, occurrenceID(inc.Alerts[0])))
		}
		seen := map[string]bool{}
		detections := 0
		for j, e := range inc.Timeline {
			if seen[e.ID] {
				errs = append(errs, fmt.Sprintf("entry %s is on the timeline twice", sc.entryLine(e)))
			}
			seen[e.ID] = true
			if j > 0 && e.Time.Before(inc.Timeline[j-1].Time) {
				errs = append(errs, fmt.Sprintf("timeline out of order at %s", sc.entryLine(e)))
			}
			if e.Reason == "" {
				errs = append(errs, fmt.Sprintf("entry %s has no reason", sc.entryLine(e)))
			}
			if e.Detection {
				detections++
			}
		}
		if inc.Status.Opened() && detections != 1 {
			errs = append(errs, fmt.Sprintf("%d entries are marked as the detection, want 1", detections))
		}
		for j, l := range inc.Lifecycle {
			if l.Reason == "" || (j > 0 && l.Time.Before(inc.Lifecycle[j-1].Time)) {
				errs = append(errs, fmt.Sprintf("lifecycle %s %s has no reason or is out of order", sc.clockOf(l.Time), l.Status))
			}
		}
		for _, s := range inc.SuspectedChanges {
			if strings.Contains(strings.ToLower(s.Reason), "root cause") || s.Reason == "" {
				errs = append(errs, fmt.Sprintf("suspect %s: reason %q must give reasons and never say root cause", sc.changeName(s), s.Reason))
			}
		}
		if len(errs) > 0 {
			t.Errorf("incident #%d breaks an invariant:\n  %s\n%s", i+1, strings.Join(errs, "\n  "), sc.describe(inc))
		}
	}
}

func occurrenceID(a hindsight.AlertSummary) string {
	d := hindsight.AlertDetails{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt}
	return d.OccurrenceID()
}
