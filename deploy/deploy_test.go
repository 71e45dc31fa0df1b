// Package deploy holds no Go code, only what runs Hindsight: the
// Dockerfile, compose's configs, the Prometheus recording rules and the
// Grafana dashboard. This test keeps the last two honest: every metric
// they name is one Hindsight registers (read from a real instance) or a
// rule recorded here, and promtool accepts the rules and computes the
// quantiles the dashboard shows.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hindsight-sre/hindsight/app"
)

const (
	dashboardFile = "grafana/hindsight.json"
	rulesFile     = "prometheus/hindsight-rules.yml"
)

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s has no rule groups", rulesFile)
	}
	return rf
}

// records are the names the rule file records.
func (rf ruleFile) records() map[string]bool {
	r := map[string]bool{}
	for _, g := range rf.Groups {
		for _, rule := range g.Rules {
			if rule.Record != "" {
				r[rule.Record] = true
			}
		}
	}
	return r
}

// dashboard is what the test reads of a Grafana dashboard.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// panels returns every panel, those inside collapsed rows included.
func (d dashboard) panels() []panel {
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
	}
	hasVar := false
	for _, v := range d.Templating.List {
		hasVar = hasVar || v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}
	if !hasVar {
		t.Errorf("no ${datasource} variable of type datasource for prometheus in %+v", d.Templating.List)
	}

	ids := map[int]string{}
	var cells [][24]string // which panel covers each grid cell, to find overlaps
	exprs := 0
	for _, p := range d.panels() {
		if other, ok := ids[p.ID]; ok || p.ID == 0 {
			t.Errorf("panel %q has id %d, like %q: want unique ids", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			continue
		}
		for y := g.Y; y < g.Y+g.H; y++ {
			for len(cells) <= y {
				cells = append(cells, [24]string{})
			}
			for x := g.X; x < g.X+g.W; x++ {
				if c := cells[y][x]; c != "" {
					t.Errorf("panels %q and %q overlap at %d,%d", c, p.Title, x, y)
				}
				cells[y][x] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Expr == "" {
				t.Errorf("panel %q, query %s: no expr", p.Title, q.RefID)
			}
			if q.Datasource != nil && q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q, query %s: datasource %+v, want ${datasource}", p.Title, q.RefID, q.Datasource)
			}
			exprs++
		}
	}
	if exprs == 0 {
		t.Fatal("the dashboard queries nothing")
	}
}

// TestDashboardMetricsExist: every name a dashboard query uses is a rule
// the rules file records or a metric Hindsight registers.
func TestDashboardMetricsExist(t *testing.T) {
	d := readDashboard(t)
	records := readRules(t).records()
	real := realMetrics(t)
	for _, p := range d.panels() {
		for _, q := range p.Targets {
			names, err := metricNames(q.Expr)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
			if len(names) == 0 {
				t.Errorf("panel %q: %q names no metric", p.Title, q.Expr)
			}
			for _, n := range names {
				if !records[n] && !real[n] {
					t.Errorf("panel %q queries %s: neither a rule in %s nor a metric Hindsight registers", p.Title, n, rulesFile)
				}
			}
		}
	}
}

// recordName is level:metric:operations, the level being hindsight.
var recordName = regexp.MustCompile(`^hindsight:[a-z0-9_]+:[a-z0-9_]+$`)

// TestRecordingRules: every rule reads metrics Hindsight registers, or a
// rule recorded before it in its group (so it reads this evaluation's
// value); every recorded rule is used by the dashboard or another rule.
func TestRecordingRules(t *testing.T) {
	rf := readRules(t)
	real := realMetrics(t)
	used := map[string]bool{}
	for _, p := range readDashboard(t).panels() {
		for _, q := range p.Targets {
			names, _ := metricNames(q.Expr)
			for _, n := range names {
				used[n] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		earlier := map[string]bool{}
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			if r.Record != "" && !recordName.MatchString(r.Record) {
				t.Errorf("rule %s: want a name like hindsight:metric:operation", r.Record)
			}
			if seen[name] {
				t.Errorf("rule %s is recorded twice", name)
			}
			seen[name] = true
			names, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("rule %s: %v", name, err)
			}
			if len(names) == 0 {
				t.Errorf("rule %s: %q names no metric", name, r.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !real[n] && !earlier[n] {
					t.Errorf("rule %s reads %s: not a metric Hindsight registers, nor a rule recorded before it in group %s", name, n, g.Name)
				}
			}
			earlier[r.Record] = true
		}
	}
	for r := range rf.records() {
		if !used[r] {
			t.Errorf("rule %s is recorded but neither the dashboard nor another rule uses it", r)
		}
	}
}

// promtool finds promtool, which Debian's prometheus package ships (CI
// installs it): in CI its absence is a failure.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not on PATH; CI must have it (.ci/run installs the prometheus package)")
		}
		t.Skip("promtool is not on PATH: install it (Debian: apt-get install prometheus) to check the rules")
	}
	return path
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", rulesFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
}

// TestPromtoolQuantiles runs promtool's rule unit tests over a day of
// made-up histograms: the quantile rules give what the buckets say, and
// the lag rule drops the -1 of a replica that cannot tell.
func TestPromtoolQuantiles(t *testing.T) {
	bin := promtool(t)
	abs, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	// Per severity, a day without incidents, then at noon 10 resolved:
	// 4 within 60s, 8 within 120s, all 10 within 300s. Cumulative counts:
	// the p50 (rank 5) lies in (60, 120]: 60 + 60 × (5-4)/(8-4) = 75;
	// the p90 (rank 9) in (120, 300]: 120 + 180 × (9-8)/(10-8) = 210.
	var series strings.Builder
	for _, m := range []string{"hindsight_time_to_detect_seconds_bucket", "hindsight_time_to_resolve_seconds_bucket"} {
		for _, b := range []struct {
			le string
			n  int
		}{{"30", 0}, {"60", 4}, {"120", 8}, {"300", 10}, {"+Inf", 10}} {
			fmt.Fprintf(&series, "      - series: '%s{severity=\"critical\",le=\"%s\",instance=\"h:9097\",job=\"hindsight\"}'\n        values: '0+0x720 %d+0x720'\n", m, b.le, b.n)
		}
	}
	test := fmt.Sprintf(`rule_files: [%q]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
%s      - series: 'hindsight_consumer_lag_messages{instance="a:9097"}'
        values: '-1x10'
      - series: 'hindsight_consumer_lag_messages{instance="b:9097"}'
        values: '5x10'
    promql_expr_test:
      - expr: round(hindsight:time_to_detect_seconds:p50_1d)
        eval_time: 1d
        exp_samples: [{labels: '{severity="critical"}', value: 75}]
      - expr: round(hindsight:time_to_detect_seconds:p90_1d)
        eval_time: 1d
        exp_samples: [{labels: '{severity="critical"}', value: 210}]
      - expr: round(hindsight:time_to_resolve_seconds:p50_1d)
        eval_time: 1d
        exp_samples: [{labels: '{severity="critical"}', value: 75}]
      - expr: round(hindsight:time_to_resolve_seconds:p90_1d)
        eval_time: 1d
        exp_samples: [{labels: '{severity="critical"}', value: 210}]
      - expr: round(histogram_quantile(0.9, sum by (le) (hindsight:time_to_detect_seconds_bucket:increase1d)))
        eval_time: 1d
        exp_samples: [{labels: '{}', value: 210}]
      - expr: hindsight:consumer_lag_messages:max
        eval_time: 5m
        exp_samples: [{labels: 'hindsight:consumer_lag_messages:max', value: 5}]
`, abs, series.String())
	path := filepath.Join(t.TempDir(), "hindsight-rules.test.yml")
	if err := os.WriteFile(path, []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "test", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\ntest file:\n%s", err, out, test)
	}
}

var (
	realOnce  sync.Once
	realNames map[string]bool
	realErr   error
)

// realMetrics returns the names of the series a real Hindsight exports
// once it has seen some traffic: labelled metrics appear only when first
// used, so it receives an alert that fires and resolves (time to detect
// and resolve, publish latency) and a request it rejects. Histograms
// contribute their _bucket, _sum and _count series.
func realMetrics(t *testing.T) map[string]bool {
	t.Helper()
	realOnce.Do(func() { realNames, realErr = gatherReal() })
	if realErr != nil {
		t.Fatalf("metrics of a real Hindsight: %v", realErr)
	}
	return realNames
}

func gatherReal() (map[string]bool, error) {
	dir, err := os.MkdirTemp("", "hindsight-deploy-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	a, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	base := "http://" + a.Addr()
	post := func(body string, want int) error {
		res, err := http.Post(base+"/hooks/alertmanager", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != want {
			return fmt.Errorf("POST /hooks/alertmanager: %s, want %d", res.Status, want)
		}
		return nil
	}
	// One startsAt for both notifications, as Alertmanager sends: taken
	// apart, a second could tick between them, and the resolve would be
	// of another occurrence, leaving the incident open.
	starts := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Second).Format(time.RFC3339)
	alert := func(status string, ends time.Time) string {
		e := "0001-01-01T00:00:00Z"
		if !ends.IsZero() {
			e = ends.UTC().Format(time.RFC3339Nano)
		}
		return fmt.Sprintf(`{"version":"4","status":%q,"receiver":"hindsight","groupKey":"{}:{service=\"checkout\"}",
"alerts":[{"status":%q,"labels":{"alertname":"HighLatency","service":"checkout","severity":"critical"},
"annotations":{"summary":"slow"},"startsAt":%q,"endsAt":%q,"fingerprint":"0123456789abcdef"}]}`,
			status, status, starts, e)
	}
	firing := alert("firing", time.Time{})
	if err := post(firing, http.StatusOK); err != nil {
		return nil, err
	}
	if err := post("{", http.StatusBadRequest); err != nil {
		return nil, err
	}
	// Resolved after the firing notification arrived, so that time to
	// detect is known and observed too.
	if err := waitGathered(a, "hindsight_incidents_open", 1); err != nil {
		return nil, err
	}
	if err := post(alert("resolved", time.Now()), http.StatusOK); err != nil {
		return nil, err
	}
	for _, m := range []string{"hindsight_time_to_resolve_seconds", "hindsight_time_to_detect_seconds"} {
		if err := waitGathered(a, m, -1); err != nil {
			return nil, err
		}
	}
	mfs, err := a.Registry().Gather()
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names, nil
}

// waitGathered waits until the registry has metric, with the value want
// when want is not negative.
func waitGathered(a *app.App, metric string, want float64) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		mfs, err := a.Registry().Gather()
		if err != nil {
			return err
		}
		for _, mf := range mfs {
			if mf.GetName() != metric {
				continue
			}
			if want < 0 || (len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge().GetValue() == want) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s (want %v) after 20s", metric, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// promqlGrafanaVar is a Grafana variable ($__rate_interval, ${datasource}).
var (
	promqlGrafanaVar = regexp.MustCompile(`\$\{?[A-Za-z0-9_]+\}?`)
	promqlString     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers   = regexp.MustCompile(`\{[^}]*\}`)
	promqlRange      = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent      = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promqlKeywords   = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"offset": true, "bool": true, "and": true, "or": true, "unless": true, "atan2": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping labels,
// numbers, keywords and function names are taken out. It is no parser,
// but enough for the expressions a dashboard and its rules hold; a
// selector by __name__ it cannot check, so it refuses one.
func metricNames(expr string) ([]string, error) {
	if strings.Contains(expr, "__name__") {
		return nil, fmt.Errorf("%q selects by __name__, which this check cannot follow", expr)
	}
	s := promqlGrafanaVar.ReplaceAllString(expr, "1")
	s = promqlString.ReplaceAllString(s, `""`)
	s = promqlMatchers.ReplaceAllString(s, "{}")
	s = promqlRange.ReplaceAllString(s, "[]")
	s = promqlGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.", rune(s[loc[0]-1])) {
			continue // a number's exponent or a duration's unit: 1e3, 5m
		}
		if promqlKeywords[strings.ToLower(name)] || strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") {
			continue // a function or an aggregation
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`hindsight_incidents_open`, []string{"hindsight_incidents_open"}},
		{`max(hindsight_consumer_lag_messages >= 0)`, []string{"hindsight_consumer_lag_messages"}},
		{`sum by (source, reason) (rate(hindsight_events_rejected_total{source=~"a|b", reason!="x}"}[5m]))`, []string{"hindsight_events_rejected_total"}},
		{`histogram_quantile(0.9, sum by (le) (rate(x_bucket[$__rate_interval]))) > 1e3`, []string{"x_bucket"}},
		{`sum(rate(a_total[5m] offset 1h)) / on (job) group_left (instance) b`, []string{"a_total", "b"}},
		{`hindsight:time_to_detect_seconds:p90_1d or vector(0)`, []string{"hindsight:time_to_detect_seconds:p90_1d"}},
		{`label_replace(up, "a", "$1", "b", "(.*)")`, []string{"up"}},
		{`sum(x) without (le) * 2`, []string{"x"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
	if _, err := metricNames(`{__name__=~"hindsight_.*"}`); err == nil {
		t.Error("a selector by __name__: no error")
	}
}
