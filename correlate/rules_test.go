package correlate_test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
)

// rday is the day the rule tests happen on.
var rday = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// hm is a clock time on rday: "10:04" or "10:04:30".
func hm(s string) time.Time {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if c, err := time.Parse(layout, s); err == nil {
			return rday.Add(c.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)))
		}
	}
	panic("bad clock time " + s)
}

// ruleAlert is one occurrence of an alert with labels "k=v" pairs,
// starting at starts and, unless ends is "", resolved at ends; each
// notification received 30s after it happened.
func ruleAlert(name, starts, ends string, kv ...string) []hindsight.Event {
	ls := map[string]string{}
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		ls[k] = v
	}
	a := alertSpec{name: name, labels: ls, starts: hm(starts)}
	a.received = a.starts.Add(30 * time.Second)
	if ends != "" {
		a.ends = hm(ends)
		a.resolvedReceived = a.ends.Add(30 * time.Second)
	}
	return a.events()
}

// ruleDeploy is a deploy of service at a clock time, with labels "k=v".
func ruleDeploy(service, version, status, env, at string, kv ...string) hindsight.Event {
	ls := map[string]string{}
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		ls[k] = v
	}
	return deployEvent(deploySpec{service: service, version: version, status: status, env: env, labels: ls,
		at: hm(at), received: hm(at).Add(5 * time.Second)})
}

// rulesConfig builds a config from its YAML form, as the scenarios do.
func rulesConfig(t *testing.T, sc scenarioConfig) correlate.Config {
	t.Helper()
	cfg, err := sc.build()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func lifecycleOf(inc *hindsight.Incident) []string {
	var out []string
	for _, l := range inc.Lifecycle {
		out = append(out, l.Time.Format("15:04")+" "+l.Status)
	}
	return out
}

func TestRulePlacement(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{Rules: []ruleSpec{
		{Name: "watchdog", Match: []string{`alertname="Watchdog"`}, Ignore: []string{`alertname="Watchdog"`}},
		{Name: "infra", Match: []string{`team="infra"`}, Key: []string{"cluster", "service"}},
		{Name: "critical", Match: []string{`severity=~"critical|page"`}},
		{Name: "search", Match: []string{`service="search"`}, Ignore: []string{`instance=~"canary-.*"`}},
	}})
	for _, tc := range []struct {
		name    string
		labels  []string
		noGroup bool
		key     string
		rule    string
		ignored bool
		why     string // what Why must say
	}{
		{name: "first match wins: an infra alert that is also critical goes by infra",
			labels: []string{"team=infra", "severity=critical", "cluster=eu1", "service=kubelet"},
			key:    "infra/cluster=eu1,service=kubelet", rule: "infra", why: "rule infra: key cluster=eu1,service=kubelet"},
		{name: "a later rule takes what the earlier ones do not match",
			labels: []string{"severity=page", "service=checkout"},
			key:    "critical/checkout", rule: "critical", why: "rule critical: key service=checkout"},
		{name: "a regex matcher is anchored: severity=criticality is not critical",
			labels: []string{"severity=criticality", "service=checkout"},
			key:    "checkout", why: "key service=checkout"},
		{name: "ignore drops what it matches",
			labels: []string{"alertname=Watchdog"},
			rule:   "watchdog", ignored: true, why: `rule watchdog ignores it (alertname="Watchdog")`},
		{name: "ignore drops only what it matches of what the rule selected",
			labels: []string{"service=search", "instance=canary-1"},
			rule:   "search", ignored: true, why: `rule search ignores it (instance=~"canary-.*")`},
		{name: "a rule without key takes the default key, prefixed by its name",
			labels: []string{"service=search", "instance=search-1"},
			key:    "search/search", rule: "search", why: "rule search: key service=search"},
		{name: "a composite key with a label missing keeps an empty value",
			labels: []string{"team=infra", "service=kubelet"},
			key:    `infra/cluster="",service=kubelet`, rule: "infra", why: `key cluster="",service=kubelet`},
		{name: "a composite key quotes values that would be ambiguous",
			labels: []string{"team=infra", "service=kubelet", "cluster=eu 1,a"},
			key:    `infra/cluster="eu 1,a",service=kubelet`, rule: "infra"},
		{name: "no rule matches: the default rule keys by service",
			labels: []string{"service=checkout", "job=shop"},
			key:    "checkout", why: "key service=checkout"},
		{name: "the default rule falls back to job",
			labels: []string{"job=node-exporter"},
			key:    "node-exporter", why: "key job=node-exporter"},
		{name: "and then to Alertmanager's group key",
			labels: []string{"instance=db-1"},
			key:    `{}:{alertname="Down"}`, why: `key Alertmanager group {}:{alertname="Down"} (no service or job label)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := ruleAlert(cmp.Or(labelValue(tc.labels, "alertname"), "Down"), "10:00", "", tc.labels...)
			p := cfg.Place(&evs[0])
			if p.Key != tc.key || p.Rule != tc.rule || p.Ignored != tc.ignored || !strings.Contains(p.Why, tc.why) {
				t.Errorf("Place = %+v\nwant key %q rule %q ignored %v, why saying %q", p, tc.key, tc.rule, tc.ignored, tc.why)
			}
			incs := cfg.FoldStream(evs)
			switch {
			case tc.ignored && len(incs) != 0:
				t.Errorf("an ignored alert made %d incidents: %+v", len(incs), incs)
			case !tc.ignored && (len(incs) != 1 || incs[0].Key != tc.key || incs[0].Rule != tc.rule):
				t.Errorf("incidents = %s, want one with key %q and rule %q", dumpKeys(incs), tc.key, tc.rule)
			}
		})
	}
}

func labelValue(kv []string, name string) string {
	for _, p := range kv {
		if k, v, _ := strings.Cut(p, "="); k == name {
			return v
		}
	}
	return ""
}

func dumpKeys(incs []hindsight.Incident) string {
	var s []string
	for _, inc := range incs {
		s = append(s, fmt.Sprintf("{key %q rule %q status %s}", inc.Key, inc.Rule, inc.Status))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// A rule's key is "<rule>/<values>"; a default key is a label value,
// which may hold a slash too (the Prometheus Operator's jobs are
// "<namespace>/<name>"). The two must not meet in one key.
func TestRuleKeysDoNotCollideWithDefaultKeys(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{Rules: []ruleSpec{{Name: "monitoring", Match: []string{`namespace="monitoring"`}, OpenAfter: openAfterSpec{Alerts: 3}}}})
	incs := cfg.FoldStream(slices.Concat(
		ruleAlert("TargetDown", "10:06", "10:20", "job=monitoring/node-exporter"),
		ruleAlert("NodeExporterDown", "10:05", "10:20", "namespace=monitoring", "job=node-exporter")))
	var got []string
	for _, inc := range incs {
		got = append(got, fmt.Sprintf("rule %q %s", inc.Rule, inc.Status))
	}
	slices.Sort(got)
	if want := []string{`rule "" resolved`, `rule "monitoring" suppressed`}; !slices.Equal(got, want) {
		t.Errorf("incidents = %s\nwant one per rule, each by its own settings: %q", dumpKeys(incs), want)
	}
}

// A composite key names its labels on the incident, and a deploy is
// placed by its service whatever the rules say about alerts.
func TestCompositeKeyOnTheIncident(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{Rules: []ruleSpec{{Name: "infra", Match: []string{`team="infra"`}, Key: []string{"cluster", "service"}}}})
	evs := slices.Concat(
		ruleAlert("NodeNotReady", "10:00", "10:20", "team=infra", "cluster=eu1", "service=kubelet", "instance=node-1"),
		ruleAlert("NodeNotReady", "10:01", "10:15", "team=infra", "cluster=us1", "service=kubelet", "instance=node-7"),
	)
	incs := cfg.FoldStream(evs)
	if len(incs) != 2 {
		t.Fatalf("got %s, want one incident per cluster", dumpKeys(incs))
	}
	for i, cluster := range []string{"eu1", "us1"} {
		want := map[string]string{"cluster": cluster, "service": "kubelet"}
		if inc := incs[i]; inc.Key != "infra/cluster="+cluster+",service=kubelet" || fmt.Sprint(inc.KeyLabels) != fmt.Sprint(want) || inc.Service != "kubelet" {
			t.Errorf("incident %d: key %q key_labels %v service %q, want key_labels %v", i, inc.Key, inc.KeyLabels, inc.Service, want)
		}
	}
	d := ruleDeploy("kubelet", "v1.31", "succeeded", "", "09:50", "cluster=eu1")
	if p := cfg.Place(&d); p.Key != "kubelet" || p.Rule != "" {
		t.Errorf("deploy placed %+v, want key kubelet by no rule", p)
	}
}

// Ignored alerts are kept out of incidents on both paths, and the
// correlator still knows them, so a redelivery is a duplicate.
func TestIgnoredAlertsThroughTheCorrelator(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{Rules: []ruleSpec{{Name: "watchdog", Match: []string{`alertname="Watchdog"`}, Ignore: []string{`alertname="Watchdog"`}}}})
	evs := slices.Concat(ruleAlert("Watchdog", "09:00", "", "prometheus=eu1"), ruleAlert("Watchdog", "09:00", "", "prometheus=us1"))
	if incs := cfg.FoldStream(evs); len(incs) != 0 {
		t.Fatalf("FoldStream: %s, want no incident", dumpKeys(incs))
	}
	store := openStore(t)
	reg := prometheus.NewRegistry()
	c, err := correlate.New(cfg, store, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := c.Apply(context.Background(), evs, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if incs := readIncidents(t, cfg, store); len(incs) != 0 {
		t.Fatalf("store: %s, want no incident", dumpKeys(incs))
	}
	if n := counterValue(t, reg, "hindsight_correlate_events_deduplicated_total"); n != 2 {
		t.Errorf("deduplicated = %v, want 2 (both ignored alerts delivered again)", n)
	}
}

// counterValue sums the counter name in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := 0.0
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestOpenAfterAlerts(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{OpenAfter: openAfterSpec{Alerts: 2}})
	blip := ruleAlert("DiskLatencyHigh", "10:00", "", "service=storage")
	blipResolved := ruleAlert("DiskLatencyHigh", "10:00", "10:03", "service=storage")
	second := ruleAlert("OSDDown", "10:02", "", "service=storage", "severity=critical")
	secondAfterResolve := ruleAlert("OSDDown", "10:08", "10:30", "service=storage")
	farLater := ruleAlert("OSDDown", "10:20", "", "service=storage")
	pendingID := correlate.IncidentID("storage", blip[0].Alert.OccurrenceID())
	for _, tc := range []struct {
		name        string
		events      []hindsight.Event
		statuses    []hindsight.Status
		lifecycle   []string // of the first incident
		resolvedAt  string   // of the first incident; "" none
		detected    bool
		wantIDFirst bool
	}{
		{name: "one blip while it fires is pending", events: blip,
			statuses: []hindsight.Status{hindsight.StatusPending}, lifecycle: []string{"10:00 pending"}, wantIDFirst: true},
		{name: "one blip that resolved is suppressed", events: blipResolved,
			statuses: []hindsight.Status{hindsight.StatusSuppressed}, lifecycle: []string{"10:00 pending", "10:03 suppressed"},
			resolvedAt: "10:03", wantIDFirst: true},
		{name: "the second alert opens it, with the ID it had while pending", events: slices.Concat(blip, second),
			statuses: []hindsight.Status{hindsight.StatusOpen}, lifecycle: []string{"10:00 pending", "10:02 opened"},
			detected: true, wantIDFirst: true},
		{name: "a second alert within the reopen window of a resolved blip opens it", events: slices.Concat(blipResolved, secondAfterResolve),
			statuses: []hindsight.Status{hindsight.StatusResolved}, lifecycle: []string{"10:00 pending", "10:08 opened", "10:30 resolved"},
			resolvedAt: "10:30", detected: true, wantIDFirst: true},
		{name: "a second alert after the reopen window starts its own group", events: slices.Concat(blipResolved, farLater),
			statuses:  []hindsight.Status{hindsight.StatusSuppressed, hindsight.StatusPending},
			lifecycle: []string{"10:00 pending", "10:03 suppressed"}, resolvedAt: "10:03", wantIDFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			incs := cfg.FoldStream(tc.events)
			var statuses []hindsight.Status
			for _, inc := range incs {
				statuses = append(statuses, inc.Status)
			}
			if !slices.Equal(statuses, tc.statuses) {
				t.Fatalf("statuses = %v, want %v", statuses, tc.statuses)
			}
			inc := &incs[0]
			if lc := lifecycleOf(inc); !slices.Equal(lc, tc.lifecycle) {
				t.Errorf("lifecycle = %q, want %q", lc, tc.lifecycle)
			}
			if got := fmtTime(inc.ResolvedAt); got != tc.resolvedAt {
				t.Errorf("resolved_at = %q, want %q", got, tc.resolvedAt)
			}
			if (inc.DetectedAt != nil) != tc.detected || (inc.TimeToDetect != nil) != tc.detected {
				t.Errorf("detected_at = %v, time to detect = %v; want them known: %v", inc.DetectedAt, inc.TimeToDetect, tc.detected)
			}
			if tc.wantIDFirst && inc.ID != pendingID {
				t.Errorf("id = %s, want %s, the ID it had while pending", inc.ID, pendingID)
			}
			if inc.OpensAt != nil {
				t.Errorf("opens_at = %s: only open_after for: has a time to open at", inc.OpensAt)
			}
		})
	}
}

// Reopened counts the reopenings the lifecycle shows: blips before the
// incident opened are not reopenings of it.
func TestOpenAfterReopenedCount(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{OpenAfter: openAfterSpec{Alerts: 2}})
	incs := cfg.FoldStream(slices.Concat(
		ruleAlert("DiskLatencyHigh", "10:00", "10:03", "service=storage"),
		ruleAlert("OSDDown", "10:08", "10:30", "service=storage")))
	if len(incs) != 1 {
		t.Fatalf("got %s, want one incident", dumpKeys(incs))
	}
	n := 0
	for _, l := range incs[0].Lifecycle {
		if l.Status == "reopened" {
			n++
		}
	}
	if incs[0].Reopened != n {
		t.Errorf("reopened = %d, but the lifecycle %q shows %d reopenings", incs[0].Reopened, lifecycleOf(&incs[0]), n)
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format("15:04")
}

func TestOpenAfterFor(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{OpenAfter: openAfterSpec{For: 5 * time.Minute}})
	firing := ruleAlert("OSDDown", "10:00", "", "service=storage")
	key := cfg.Place(&firing[0]).Key
	pendingID := correlate.IncidentID(key, firing[0].Alert.OccurrenceID())
	for _, tc := range []struct {
		name      string
		events    []hindsight.Event
		now       string
		status    hindsight.Status
		lifecycle []string
		opensAt   string
	}{
		{name: "firing, now before the deadline: pending, opens at 10:05", events: firing, now: "10:04:59",
			status: hindsight.StatusPending, lifecycle: []string{"10:00 pending"}, opensAt: "10:05"},
		{name: "firing, now at the deadline: open since 10:05", events: firing, now: "10:05",
			status: hindsight.StatusOpen, lifecycle: []string{"10:00 pending", "10:05 opened"}},
		{name: "firing, now long after: open since 10:05", events: firing, now: "11:00",
			status: hindsight.StatusOpen, lifecycle: []string{"10:00 pending", "10:05 opened"}},
		{name: "resolved after 4m: suppressed, whatever now", events: ruleAlert("OSDDown", "10:00", "10:04", "service=storage"), now: "12:00",
			status: hindsight.StatusSuppressed, lifecycle: []string{"10:00 pending", "10:04 suppressed"}},
		{name: "resolved after exactly 5m: it qualified", events: ruleAlert("OSDDown", "10:00", "10:05", "service=storage"), now: "10:05",
			status: hindsight.StatusResolved, lifecycle: []string{"10:00 pending", "10:05 opened", "10:05 resolved"}},
		{name: "resolved after 6m, even with now before the deadline (a replay's early watermark)",
			events: ruleAlert("OSDDown", "10:00", "10:06", "service=storage"), now: "10:01",
			status: hindsight.StatusResolved, lifecycle: []string{"10:00 pending", "10:05 opened", "10:06 resolved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			incs := cfg.Fold(key, tc.events, hm(tc.now))
			if len(incs) != 1 {
				t.Fatalf("got %s, want one incident", dumpKeys(incs))
			}
			inc := &incs[0]
			if inc.Status != tc.status {
				t.Errorf("status = %s, want %s", inc.Status, tc.status)
			}
			if lc := lifecycleOf(inc); !slices.Equal(lc, tc.lifecycle) {
				t.Errorf("lifecycle = %q, want %q", lc, tc.lifecycle)
			}
			if got := fmtTime(inc.OpensAt); got != tc.opensAt {
				t.Errorf("opens_at = %q, want %q", got, tc.opensAt)
			}
			if inc.ID != pendingID {
				t.Errorf("id = %s, want %s, the same pending or open", inc.ID, pendingID)
			}
			for _, l := range inc.Lifecycle {
				if l.Status == "opened" && !strings.Contains(l.Reason, "open_after for: 5m") {
					t.Errorf("opened because %q: want it to name open_after for: 5m", l.Reason)
				}
			}
		})
	}
}

// A rule's open_after overrides the default's, for its alerts only.
func TestOpenAfterPerRule(t *testing.T) {
	cfg := rulesConfig(t, scenarioConfig{Rules: []ruleSpec{{Name: "noisy", Match: []string{`service="storage"`}, OpenAfter: openAfterSpec{Alerts: 2}}}})
	incs := cfg.FoldStream(slices.Concat(
		ruleAlert("DiskLatencyHigh", "10:00", "10:02", "service=storage"),
		ruleAlert("HighLatency", "10:00", "10:02", "service=checkout")))
	slices.SortFunc(incs, func(a, b hindsight.Incident) int { return strings.Compare(a.Key, b.Key) })
	got := dumpKeys(incs)
	if want := `[{key "checkout" rule "" status resolved} {key "noisy/storage" rule "noisy" status suppressed}]`; got != want {
		t.Errorf("incidents = %s\nwant        %s", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	rule := func(r ruleSpec) *scenarioConfig { return &scenarioConfig{Rules: []ruleSpec{r}} }
	for _, tc := range []struct {
		name string
		cfg  func(*correlate.Config)
		want string
	}{
		{"a rule without a name", func(c *correlate.Config) { c.Rules = []correlate.Rule{{}} }, "rules[0]: name is missing"},
		{"a name with a space", func(c *correlate.Config) { c.Rules = []correlate.Rule{{Name: "my rule"}} },
			`rules[0] (my rule): name "my rule" may only hold letters, digits, '-' and '_'`},
		{"a name with a slash, which would make keys ambiguous", func(c *correlate.Config) { c.Rules = []correlate.Rule{{Name: "a/b"}} }, "may only hold"},
		{"two rules with one name", func(c *correlate.Config) { c.Rules = []correlate.Rule{{Name: "x"}, {Name: "x"}} },
			`rules[1] (x): another rule is named "x"`},
		{"a negative reopen window", func(c *correlate.Config) { c.Rules = []correlate.Rule{{Name: "x", ReopenWindow: -time.Minute}} },
			"rules[0] (x): reopen_window -1m0s is negative"},
		{"a negative lookback", func(c *correlate.Config) { c.Rules = []correlate.Rule{{Name: "x", ChangeLookback: -time.Minute}} },
			"rules[0] (x): change_lookback -1m0s is negative"},
		{"negative open_after alerts", func(c *correlate.Config) {
			c.Rules = []correlate.Rule{{Name: "x", OpenAfter: correlate.OpenAfter{Alerts: -1}}}
		}, "rules[0] (x): open_after.alerts -1 is negative"},
		{"negative open_after for", func(c *correlate.Config) {
			c.Rules = []correlate.Rule{{Name: "x", OpenAfter: correlate.OpenAfter{For: -time.Second}}}
		}, "rules[0] (x): open_after.for -1s is negative"},
		{"an empty key label", func(c *correlate.Config) { c.Rules = []correlate.Rule{{Name: "x", Key: []string{"cluster", ""}}} },
			"rules[0] (x): key[1] is empty"},
		{"a key label twice", func(c *correlate.Config) {
			c.Rules = []correlate.Rule{{Name: "x", Key: []string{"cluster", "cluster"}}}
		},
			"rules[0] (x): key names cluster twice"},
		{"a deploy label mapped to nothing", func(c *correlate.Config) {
			c.Rules = []correlate.Rule{{Name: "x", DeployLabels: map[string]string{"service": ""}}}
		}, `rules[0] (x): deploy_labels maps "service" to "": both sides must be named`},
		{"the second rule is named in the error", func(c *correlate.Config) {
			c.Rules = []correlate.Rule{{Name: "ok"}, {Name: "bad", ReopenWindow: -1}}
		}, "rules[1] (bad)"},
		{"no key labels", func(c *correlate.Config) { c.KeyLabels = nil }, "key_labels is empty"},
		{"an empty key label name", func(c *correlate.Config) { c.KeyLabels = []string{"service", ""} }, "key_labels has an empty label name"},
		{"a negative related window", func(c *correlate.Config) { c.RelatedWindow = -time.Minute }, "related_window -1m0s is negative"},
		{"no severity label", func(c *correlate.Config) { c.SeverityLabel = "" }, "severity_label is empty"},
		{"a negative default open_after", func(c *correlate.Config) { c.OpenAfter.For = -time.Minute }, "open_after is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := correlate.DefaultConfig()
			tc.cfg(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error saying %q", err, tc.want)
			}
			if _, err := correlate.New(cfg, nil, nil, nil); err == nil {
				t.Errorf("New accepted a config Validate rejects")
			}
		})
	}
	// Matchers that do not parse are the config parser's to report;
	// the YAML form of the tests reports them by rule.
	if _, err := rule(ruleSpec{Name: "x", Match: []string{`severity=~"(unclosed"`}}).build(); err == nil || !strings.Contains(err.Error(), "rule x: match") {
		t.Errorf("a bad matcher gave %v, want an error naming rule x's match", err)
	}
	if err := correlate.DefaultConfig().Validate(); err != nil {
		t.Errorf("the default config is invalid: %v", err)
	}
}

// suspects folds events and returns the single incident's suspects as
// "service version" → change.
func suspectsOf(t *testing.T, cfg correlate.Config, events []hindsight.Event) (*hindsight.Incident, []string, map[string]hindsight.SuspectedChange) {
	t.Helper()
	incs := cfg.FoldStream(events)
	if len(incs) != 1 {
		t.Fatalf("got %s, want one incident", dumpKeys(incs))
	}
	var names []string
	by := map[string]hindsight.SuspectedChange{}
	for _, s := range incs[0].SuspectedChanges {
		n := s.Service + " " + s.Version
		names = append(names, n)
		by[n] = s
		if s.Reason == "" || strings.Contains(strings.ToLower(s.Reason), "root cause") || strings.Contains(strings.ToLower(s.Reason), "caused") {
			t.Errorf("suspect %s: reason %q must give reasons in words and never claim a cause", n, s.Reason)
		}
	}
	return &incs[0], names, by
}

func TestDeployRelation(t *testing.T) {
	alertApp := ruleAlert("HighLatency", "10:00", "10:30", "app=checkout-api", "job=checkout-pods", "env=prod", "cluster=eu1")
	alertSvc := ruleAlert("HighLatency", "10:00", "10:30", "service=checkout", "env=prod", "cluster=eu1", "k8s_cluster=eu1")
	for _, tc := range []struct {
		name    string
		cfg     scenarioConfig
		events  []hindsight.Event
		want    []string // suspects, ranked
		reasons map[string]string
	}{
		{name: "deploy_labels maps the deploy's service to the alerts' app label",
			cfg:    scenarioConfig{KeyLabels: []string{"app"}, DeployLabels: map[string]string{"service": "app"}},
			events: append(slices.Clone(alertApp), ruleDeploy("checkout-api", "v7", "succeeded", "prod", "09:50")),
			want:   []string{"checkout-api v7"}, reasons: map[string]string{"checkout-api v7": "same service checkout-api"}},
		{name: "without the mapping the deploy names no service of the alerts",
			cfg:    scenarioConfig{KeyLabels: []string{"app"}, SharedLabels: &[]string{}},
			events: append(slices.Clone(alertApp), ruleDeploy("checkout-api", "v7", "succeeded", "prod", "09:50")),
			want:   nil},
		{name: "a deploy of another service in the same cluster is a suspect",
			events: append(slices.Clone(alertSvc), ruleDeploy("mesh-config", "v45", "succeeded", "prod", "09:50", "cluster=eu1")),
			want:   []string{"mesh-config v45"}, reasons: map[string]string{"mesh-config v45": "same cluster eu1 (a deploy of mesh-config)"}},
		{name: "a shared label maps to another alert label through deploy_labels",
			cfg:    scenarioConfig{SharedLabels: &[]string{"cluster"}, DeployLabels: map[string]string{"cluster": "k8s_cluster"}},
			events: append(ruleAlert("HighLatency", "10:00", "10:30", "service=checkout", "k8s_cluster=eu1"), ruleDeploy("mesh-config", "v45", "succeeded", "", "09:50", "cluster=eu1")),
			want:   []string{"mesh-config v45"}, reasons: map[string]string{"mesh-config v45": "same cluster eu1"}},
		{name: "another cluster is not a suspect",
			events: append(slices.Clone(alertSvc), ruleDeploy("mesh-config", "v45", "succeeded", "prod", "09:50", "cluster=us1")),
			want:   nil},
		{name: "the service itself, deployed to another cluster, is not a suspect",
			events: append(slices.Clone(alertSvc), ruleDeploy("checkout", "v9", "succeeded", "prod", "09:50", "cluster=us1"),
				ruleDeploy("checkout", "v8", "succeeded", "prod", "09:40", "cluster=eu1")),
			want: []string{"checkout v8"}},
		{name: "shared_labels emptied: the same cluster is no longer a reason",
			cfg:    scenarioConfig{SharedLabels: &[]string{}},
			events: append(slices.Clone(alertSvc), ruleDeploy("mesh-config", "v45", "succeeded", "prod", "09:50", "cluster=eu1")),
			want:   nil},
		{name: "another environment is excluded, even for the same service",
			events: append(slices.Clone(alertSvc), ruleDeploy("checkout", "v2-rc1", "succeeded", "staging", "09:55")),
			want:   nil},
		{name: "a deploy naming no environment is not excluded",
			events: append(slices.Clone(alertSvc), ruleDeploy("checkout", "v2", "succeeded", "", "09:55")),
			want:   []string{"checkout v2"}},
		{name: "outside the lookback, and after the start, are not suspects",
			events: append(slices.Clone(alertSvc), ruleDeploy("checkout", "v1", "succeeded", "prod", "08:59"), ruleDeploy("checkout", "v3", "succeeded", "prod", "10:01")),
			want:   nil},
		{name: "a rule's change_lookback widens the window for its alerts",
			cfg:    scenarioConfig{Rules: []ruleSpec{{Name: "slow", Match: []string{`service="checkout"`}, ChangeLookback: 3 * time.Hour}}},
			events: append(slices.Clone(alertSvc), ruleDeploy("checkout", "v1", "succeeded", "prod", "08:00")),
			want:   []string{"checkout v1"}, reasons: map[string]string{"checkout v1": "2h before the first alert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got, by := suspectsOf(t, rulesConfig(t, tc.cfg), tc.events)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("suspects = %q, want %q", got, tc.want)
			}
			for n, r := range tc.reasons {
				if !strings.Contains(by[n].Reason, r) {
					t.Errorf("reason for %s = %q, want it to say %q", n, by[n].Reason, r)
				}
			}
		})
	}
}

func TestScoring(t *testing.T) {
	cfg := correlate.DefaultConfig()
	alert := ruleAlert("HighLatency", "10:00", "10:30", "service=checkout", "env=prod", "cluster=eu1")
	score := func(t *testing.T, events []hindsight.Event, name string) hindsight.SuspectedChange {
		t.Helper()
		_, names, by := suspectsOf(t, cfg, append(slices.Clone(alert), events...))
		if _, ok := by[name]; !ok {
			t.Fatalf("%s is not a suspect (suspects %q)", name, names)
		}
		return by[name]
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.0015 }

	t.Run("the same service ranks above a shared cluster, nearer above farther", func(t *testing.T) {
		_, got, by := suspectsOf(t, cfg, append(slices.Clone(alert),
			ruleDeploy("mesh-config", "v45", "succeeded", "prod", "09:58", "cluster=eu1"),
			ruleDeploy("checkout", "v2", "succeeded", "prod", "09:20"),
			ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50")))
		if want := []string{"checkout v3", "checkout v2", "mesh-config v45"}; !slices.Equal(got, want) {
			t.Fatalf("ranking = %q, want %q", got, want)
		}
		if s := by["checkout v3"]; s.MinutesBefore != 10 || !strings.Contains(s.Reason, "10m before the first alert") {
			t.Errorf("checkout v3: minutes_before %v, reason %q; want 10 and the reason saying so", s.MinutesBefore, s.Reason)
		}
	})
	t.Run("a failed deploy scores 0.1 more than a succeeded one", func(t *testing.T) {
		ok := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50")}, "checkout v3")
		failed := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "failed", "prod", "09:50")}, "checkout v3")
		if !near(failed.Score-ok.Score, 0.1) || !strings.Contains(failed.Reason, "the deploy failed") {
			t.Errorf("failed %.3f (%q) vs succeeded %.3f: want +0.1 and the reason saying it failed", failed.Score, failed.Reason, ok.Score)
		}
	})
	t.Run("a failed deploy outranks a succeeded one at the same distance", func(t *testing.T) {
		_, got, _ := suspectsOf(t, cfg, append(slices.Clone(alert),
			ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"), ruleDeploy("checkout", "v4", "failed", "prod", "09:50")))
		if want := []string{"checkout v4", "checkout v3"}; !slices.Equal(got, want) {
			t.Errorf("ranking = %q, want %q", got, want)
		}
	})
	t.Run("a rollback during the incident, before it resolved, scores 0.15 more", func(t *testing.T) {
		plain := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50")}, "checkout v3")
		rolled := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"),
			ruleDeploy("checkout", "v3", "rolled_back", "prod", "10:20")}, "checkout v3")
		if !near(rolled.Score-plain.Score, 0.15) || !strings.Contains(rolled.Reason, "rolled back at 10:20 UTC, 10m before the incident resolved") {
			t.Errorf("rolled back %.3f (%q) vs plain %.3f: want +0.15 and the reason saying when", rolled.Score, rolled.Reason, plain.Score)
		}
	})
	t.Run("a redeploy of another version during the incident counts as undoing it", func(t *testing.T) {
		s := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"),
			ruleDeploy("checkout", "v2", "succeeded", "prod", "10:25")}, "checkout v3")
		if !strings.Contains(s.Reason, "redeployed as v2 at 10:25 UTC, 5m before the incident resolved") {
			t.Errorf("reason = %q, want it to name the redeploy", s.Reason)
		}
	})
	t.Run("a rollback after the incident resolved earns nothing", func(t *testing.T) {
		plain := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50")}, "checkout v3")
		late := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"),
			ruleDeploy("checkout", "v3", "rolled_back", "prod", "10:35")}, "checkout v3")
		if late.Score != plain.Score || strings.Contains(late.Reason, "rolled back") {
			t.Errorf("late rollback: %.3f (%q), want %.3f and no rollback in the reason", late.Score, late.Reason, plain.Score)
		}
	})
	t.Run("a rollback in another environment earns nothing", func(t *testing.T) {
		plain := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50")}, "checkout v3")
		other := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"),
			ruleDeploy("checkout", "v3", "rolled_back", "staging", "10:20")}, "checkout v3")
		if other.Score != plain.Score {
			t.Errorf("staging rollback: %.3f (%q), want %.3f", other.Score, other.Reason, plain.Score)
		}
	})
	t.Run("a rollback while the incident is still open earns nothing yet", func(t *testing.T) {
		incs := cfg.FoldStream([]hindsight.Event{ruleAlert("HighLatency", "10:00", "", "service=checkout", "env=prod")[0],
			ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"), ruleDeploy("checkout", "v3", "rolled_back", "prod", "10:20")})
		if len(incs) != 1 || len(incs[0].SuspectedChanges) != 1 || strings.Contains(incs[0].SuspectedChanges[0].Reason, "rolled back") {
			t.Fatalf("got %+v, want one suspect without a rollback bonus", incs)
		}
	})
	t.Run("a deploy still in progress says so", func(t *testing.T) {
		s := score(t, []hindsight.Event{ruleDeploy("checkout", "v3", "started", "prod", "09:58")}, "checkout v3")
		if !strings.Contains(s.Reason, "the deploy was still in progress") {
			t.Errorf("reason = %q", s.Reason)
		}
	})
	t.Run("a rollback of the next version does not credit the one it restores", func(t *testing.T) {
		s := score(t, []hindsight.Event{ruleDeploy("checkout", "v2", "succeeded", "prod", "09:20"),
			ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"), ruleDeploy("checkout", "v3", "rolled_back", "prod", "10:20")}, "checkout v2")
		if strings.Contains(s.Reason, "rolled back") {
			t.Errorf("v2's reason = %q: the rollback undid v3 and restored v2", s.Reason)
		}
	})
	t.Run("the timeline says which suspect it is, and the deploys during and just after", func(t *testing.T) {
		inc, _, _ := suspectsOf(t, cfg, append(slices.Clone(alert),
			ruleDeploy("checkout", "v3", "succeeded", "prod", "09:50"),
			ruleDeploy("checkout", "v3", "rolled_back", "prod", "10:20"),
			ruleDeploy("checkout", "v4", "succeeded", "prod", "10:35"),
			ruleDeploy("checkout", "v5", "succeeded", "prod", "11:00")))
		var got []string
		for _, e := range inc.Timeline {
			if e.Kind.IsDeploy() {
				got = append(got, e.Time.Format("15:04")+" "+e.Reason)
			}
		}
		want := []string{"09:50 suspected change, the top suspect", "10:20 deploy of checkout during the incident",
			"10:35 deploy of checkout 5m after the incident resolved"}
		if len(got) != len(want) {
			t.Fatalf("deploy entries = %q, want %d (v5 is long after the incident)", got, len(want))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("entry %d = %q, want it to start %q", i, got[i], want[i])
			}
		}
	})
}
