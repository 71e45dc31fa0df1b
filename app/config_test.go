package app

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/natsbus"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	os.WriteFile(secret, []byte("from-file\n"), 0o600)
	for _, tc := range []struct {
		name, yaml string
		err        string // substring; "" = ok
	}{
		{"empty", "", ""},
		{"the example in deploy/", "@../deploy/hindsight.yml", "secret"}, // its secret files live in the container
		{"durations and labels", "correlation:\n  key_labels: [cluster, service]\n  reopen_window: 5m\n", ""},
		{"unknown field names its line", "correlation:\n  reopen_windw: 5m\n", "line 2"},
		{"bad duration", "correlation:\n  reopen_window: soon\n", "line 2"},
		{"negative window", "correlation:\n  reopen_window: -5m\n", "negative"},
		{"token file", "auth:\n  deploy: {bearer_token_file: " + secret + "}\n", ""},
		{"missing token file", "auth:\n  deploy: {bearer_token_file: /nonexistent}\n", "/nonexistent"},
		{"both token and file", "auth:\n  deploy: {bearer_token: a, bearer_token_file: " + secret + "}\n", "not both"},
		{"basic auth without password", "auth:\n  api: {basic_auth: {username: u}}\n", "password"},
		{"empty bearer token", "auth:\n  deploy: {bearer_token: \"\"}\n", "bearer_token is empty"},
		{"typo names the key, not Go types", "correlation:\n  key_lables: [x]\n", "key_lables not found (no such setting"},
		{"bad sync interval", "nats:\n  sync_interval: sometimes\n", "sync_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.TrimPrefix(tc.yaml, "@")
			if !strings.HasPrefix(tc.yaml, "@") {
				path = filepath.Join(t.TempDir(), "c.yml")
				os.WriteFile(path, []byte(tc.yaml), 0o600)
			}
			c, err := LoadConfig(path)
			if err == nil {
				_, err = c.auth()
			}
			if tc.err == "" && err != nil {
				t.Fatalf("LoadConfig = %v, want ok", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("LoadConfig = %v, want an error mentioning %q", err, tc.err)
			}
		})
	}
	c, _ := LoadConfig(writeTemp(t, "correlation:\n  reopen_window: 5m\n"))
	cc, _ := c.CorrelateConfig()
	if cc.ReopenWindow != 5*time.Minute || cc.ChangeLookback != time.Hour || cc.KeyLabels[0] != "service" {
		t.Fatalf("correlation = %+v, want 5m window over the defaults", cc)
	}
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "c.yml")
	os.WriteFile(p, []byte(s), 0o600)
	return p
}

func TestCorrelationRulesConfig(t *testing.T) {
	const file = `correlation:
  key_labels: [service]
  team_label: owner
  severity_label: level
  open_after: {alerts: 3}
  deploy_labels: {service: app, environment: env, cluster: k8s_cluster}
  shared_labels: [cluster, region]
  related_window: 15m
  rules:
    - name: heartbeats
      match: ['alertname=~"Watchdog|InfoInhibitor"']
      ignore: ['alertname=~"Watchdog|InfoInhibitor"']
    - name: prod-critical
      match: ['severity=~"critical|page"', 'env="prod"', '{team!="", region!~"test.*"}']
      key: [cluster, service]
      open_after: {alerts: 2}
      reopen_window: 30m
      change_lookback: 2h
      severity_label: sev
      team_label: squad
      deploy_labels: {service: app}
      shared_labels: []
    - name: noisy_warnings
      match: [severity = warning]
      open_after: {for: 5m, alerts: 1}
`
	c, err := LoadConfig(writeTemp(t, file))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.CorrelateConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := correlate.DefaultConfig()
	want.KeyLabels = []string{"service"}
	want.TeamLabel = "owner"
	want.SeverityLabel = "level"
	want.OpenAfter = correlate.OpenAfter{Alerts: 3}
	want.DeployLabels = map[string]string{"service": "app", "environment": "env", "cluster": "k8s_cluster"}
	want.SharedLabels = []string{"cluster", "region"}
	want.RelatedWindow = 15 * time.Minute
	want.Rules = []correlate.Rule{
		{Name: "heartbeats", Match: matchersFor(t, `alertname=~"Watchdog|InfoInhibitor"`), Ignore: matchersFor(t, `alertname=~"Watchdog|InfoInhibitor"`)},
		{
			Name:  "prod-critical",
			Match: matchersFor(t, `severity=~"critical|page"`, `env="prod"`, `team!=""`, `region!~"test.*"`),
			Key:   []string{"cluster", "service"}, OpenAfter: correlate.OpenAfter{Alerts: 2},
			ReopenWindow: 30 * time.Minute, ChangeLookback: 2 * time.Hour, SeverityLabel: "sev", TeamLabel: "squad",
			DeployLabels: map[string]string{"service": "app"}, SharedLabels: []string{},
		},
		{Name: "noisy_warnings", Match: matchersFor(t, `severity="warning"`), OpenAfter: correlate.OpenAfter{Alerts: 1, For: 5 * time.Minute}},
	}
	if g, w := configView(got), configView(want); g != w {
		t.Fatalf("correlation =\n%s\nwant\n%s", g, w)
	}
	// shared_labels: [] names none; a rule without it takes the default's.
	if got.Rules[1].SharedLabels == nil || got.Rules[2].SharedLabels != nil {
		t.Fatalf("shared_labels: rule 1 %#v (want empty, not nil), rule 2 %#v (want nil)", got.Rules[1].SharedLabels, got.Rules[2].SharedLabels)
	}

	// Only what is set overrides the defaults.
	c, _ = LoadConfig(writeTemp(t, "correlation:\n  rules: [{name: a}]\n"))
	got, _ = c.CorrelateConfig()
	want = correlate.DefaultConfig()
	want.Rules = []correlate.Rule{{Name: "a"}}
	if g, w := configView(got), configView(want); g != w {
		t.Fatalf("correlation =\n%s\nwant\n%s", g, w)
	}

	// The example config is valid and has rules.
	c, err = LoadConfig("../deploy/hindsight.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got, err = c.CorrelateConfig(); err != nil || len(got.Rules) < 2 {
		t.Fatalf("deploy/hindsight.yml: %d rules, %v; want 2 or more", len(got.Rules), err)
	}
}

func TestCorrelationRulesConfigErrors(t *testing.T) {
	const head = "correlation:\n  rules:\n    - name: first\n      match: ['env=\"prod\"']\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings; the first is the line
	}{
		{"bad matcher", head + "    - name: second\n      match:\n        - 'env=\"prod\"'\n        - 'severity critical'\n",
			[]string{"line 8: ", `correlation.rules[1] (second).match[1] "severity critical": bad matcher: bad matcher format`}},
		{"bad regex", head + "    - name: prod-critical\n      match: ['severity=~\"(\"']\n",
			[]string{`line 6: correlation.rules[1] (prod-critical).match[0] "severity=~\"(\"": bad matcher: error parsing regexp`}},
		{"bad ignore matcher", head + "      ignore: ['alertname=\"Watch\"dog\"']\n",
			[]string{"line 5: ", "correlation.rules[0] (first).ignore[0]", "unescaped double quote"}},
		{"empty matcher", head + "      ignore: ['']\n",
			[]string{"line 5: ", "ignore[0] \"\": no matcher"}},
		{"matcher not a string", head + "      ignore: [{alertname: Watchdog}]\n",
			[]string{"line 5: correlation.rules[0] (first).ignore[0]: want a string, got a mapping"}},
		{"key not a list", head + "      key: cluster\n",
			[]string{"line 5: correlation.rules[0] (first).key: want a list, got cluster"}},
		{"unknown field in a rule", head + "    - name: second\n      mtach: ['a=\"b\"']\n",
			[]string{"line 6: ", "correlation.rules[1] (second): field mtach not found (no such setting"}},
		{"unknown field under open_after", head + "      open_after: {alerts: 2, fro: 5m}\n",
			[]string{"line 5: ", "correlation.rules[0] (first).open_after: field fro not found"}},
		{"duplicate rule name", head + "    - name: other\n    - name: first\n      key: [service]\n",
			[]string{"line 6: ", `correlation.rules[2] (first): another rule is named "first"`}},
		{"missing name", head + "    - match: ['a=\"b\"']\n      key: [service]\n",
			[]string{"line 5: ", "correlation.rules[1]: name is missing"}},
		{"bad name", head + "    - name: prod critical\n",
			[]string{"line 5: ", "correlation.rules[1] (prod critical): name"}},
		{"negative duration", head + "      key: [service]\n      reopen_window: -5m\n",
			[]string{"line 6: ", "correlation.rules[0] (first): reopen_window -5m0s is negative"}},
		{"negative change lookback", head + "      change_lookback: -1h\n",
			[]string{"line 5: ", "change_lookback -1h0m0s is negative"}},
		{"bad duration in a rule", head + "      reopen_window: 5\n",
			[]string{"line 5: correlation.rules[0] (first).reopen_window: want a duration (like 10m or 1h30m), got 5"}},
		{"open_after alerts 0", head + "      open_after:\n        alerts: 0\n",
			[]string{"line 6: ", "correlation.rules[0] (first).open_after.alerts 0: want a whole number, 1 or more"}},
		{"open_after alerts not whole", head + "      open_after: {alerts: 1.5}\n",
			[]string{"line 5: ", "correlation.rules[0] (first).open_after.alerts 1.5: want a whole number"}},
		{"open_after alerts not a number", head + "      open_after: {alerts: [2]}\n",
			[]string{"line 5: ", "open_after.alerts"}},
		{"open_after empty", head + "      open_after: {}\n",
			[]string{"line 5: ", "correlation.rules[0] (first).open_after: set alerts"}},
		{"open_after not a mapping", head + "      open_after: 3\n",
			[]string{"line 5: correlation.rules[0] (first).open_after: want a mapping, got 3"}},
		{"open_after negative for", head + "      open_after: {for: -5m}\n",
			[]string{"line 5: ", "open_after.for -5m0s is negative"}},
		{"top open_after", "correlation:\n  key_labels: [service]\n  open_after:\n    alerts: -1\n",
			[]string{"line 4: ", "correlation.open_after.alerts -1"}},
		{"empty key label", head + "      key:\n        - cluster\n        - \"\"\n",
			[]string{"line 7: ", "correlation.rules[0] (first): key[1] is empty"}},
		{"key label twice", head + "      key: [cluster, cluster]\n",
			[]string{"line 5: ", "key names cluster twice"}},
		{"empty deploy label", head + "      deploy_labels: {service: \"\"}\n",
			[]string{"line 5: ", "correlation.rules[0] (first): deploy_labels maps"}},
		{"top negative related window", "correlation:\n  team_label: team\n  related_window: -1m\n",
			[]string{"line 3: ", "correlation: related_window -1m0s is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, tc.yaml)
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatalf("LoadConfig = ok, want an error mentioning %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "config "+path+" line ") {
				t.Errorf("LoadConfig = %v, want it to start with the file and line", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadConfig = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

func matchersFor(t *testing.T, ss ...string) []*labels.Matcher {
	t.Helper()
	var ms []*labels.Matcher
	for _, s := range ss {
		m, err := labels.ParseMatcher(s)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

// configView prints a correlate.Config with its matchers as strings, to
// compare.
func configView(c correlate.Config) string {
	rules := c.Rules
	c.Rules = nil
	var b strings.Builder
	fmt.Fprintf(&b, "%+v\n", c)
	for _, r := range rules {
		match, ignore := matcherStrings(r.Match), matcherStrings(r.Ignore)
		r.Match, r.Ignore = nil, nil
		fmt.Fprintf(&b, "match %q ignore %q %+v\n", match, ignore, r)
	}
	return b.String()
}

func matcherStrings(ms []*labels.Matcher) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.String())
	}
	return s
}

// The nats section's stream settings reach natsbus as given: zero for a
// setting left out (the existing stream keeps its own), Unlimited for a
// limit set to 0.
func TestNATSConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       natsbus.Options
	}{
		{"nothing set leaves the stream as it is", "", natsbus.Options{}},
		{"empty section", "nats: {}\n", natsbus.Options{}},
		{"single node", "nats:\n  stream_replicas: 1\n", natsbus.Options{StreamReplicas: 1}},
		{"cluster with placement and limits", `nats:
  stream_replicas: 3
  placement: {cluster: east, tags: [ssd, "az:b"]}
  duplicate_window: 20m
  max_age: 2160h
  max_bytes: 10737418240
  max_msgs: 50000000
`, natsbus.Options{StreamReplicas: 3, Placement: &natsbus.Placement{Cluster: "east", Tags: []string{"ssd", "az:b"}},
			DuplicateWindow: 20 * time.Minute, MaxAge: 2160 * time.Hour, MaxBytes: 10 << 30, MaxMsgs: 50_000_000}},
		{"tags without a cluster", "nats:\n  placement: {tags: [ssd]}\n", natsbus.Options{Placement: &natsbus.Placement{Tags: []string{"ssd"}}}},
		{"a cluster without tags", "nats:\n  placement:\n    cluster: east\n", natsbus.Options{Placement: &natsbus.Placement{Cluster: "east"}}},
		{"0 lifts a limit", "nats: {max_age: 0, max_bytes: 0, max_msgs: 0}\n",
			natsbus.Options{MaxAge: natsbus.Unlimited, MaxBytes: natsbus.Unlimited, MaxMsgs: natsbus.Unlimited}},
		{"0s lifts the max age", "nats: {max_age: 0s}\n", natsbus.Options{MaxAge: natsbus.Unlimited}},
		{"duplicate window equal to max age", "nats: {duplicate_window: 1h, max_age: 1h}\n", natsbus.Options{DuplicateWindow: time.Hour, MaxAge: time.Hour}},
		{"consumer and sync interval are not stream settings", "nats: {consumer: correlate-b, sync_interval: 1s}\n", natsbus.Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml), "c.yml")
			if err != nil {
				t.Fatal(err)
			}
			if got := c.NATS.streamOptions(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("stream options = %+v (placement %+v), want %+v (placement %+v)", got, got.Placement, tc.want, tc.want.Placement)
			}
		})
	}
}

func TestNATSConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // the message after "config c.yml ", or its start
	}{
		{"no replicas", "nats:\n  stream_replicas: 0\n",
			"line 2: nats.stream_replicas 0: want 1 to 5 (1 for a single nats-server, 3 for a three-node cluster)"},
		{"negative replicas", "nats: {stream_replicas: -3}\n", "line 1: nats.stream_replicas -3: want 1 to 5"},
		{"more replicas than JetStream allows", "nats:\n  consumer: a\n  stream_replicas: 7\n", "line 3: nats.stream_replicas 7: want 1 to 5"},
		{"replicas not a number", "nats:\n  stream_replicas: three\n", "line 2: nats.stream_replicas: want a whole number, got three"},
		{"empty placement", "nats:\n  placement: {}\n", "line 2: nats.placement: set cluster, tags or both (leave placement out to let JetStream choose)"},
		{"empty tag", "nats:\n  placement:\n    cluster: east\n    tags:\n      - ssd\n      - \"\"\n", `line 6: nats.placement.tags[1] is empty`},
		{"cluster name with a space", "nats:\n  placement: {cluster: us east}\n", `line 2: nats.placement.cluster "us east": a cluster name has no spaces`},
		{"placement not a mapping", "nats:\n  placement: east\n", "line 2: nats.placement: want a mapping, got east"},
		{"unknown placement setting", "nats:\n  placement: {cluster: east, tag: [ssd]}\n", "line 2: nats.placement: field tag not found (no such setting; see deploy/hindsight.yml)"},
		{"negative max age", "nats:\n  max_age: -1h\n", "line 2: nats.max_age -1h0m0s is negative: want 0 (keep events forever) or a duration such as 2160h"},
		{"tiny max age", "nats:\n  max_age: 1ms\n", "line 2: nats.max_age 1ms: want 0 (keep events forever) or 100ms or more"},
		{"max age not a duration", "nats:\n  max_age: 90\n", "line 2: nats.max_age: want a duration (like 10m or 1h30m), got 90"},
		{"duplicate window beyond max age", "nats:\n  max_age: 5m\n  duplicate_window: 10m\n",
			"line 3: nats.duplicate_window 10m0s is longer than nats.max_age 5m0s: JetStream cannot remember an event ID longer than it keeps the event"},
		{"zero duplicate window", "nats:\n  duplicate_window: 0s\n", "line 2: nats.duplicate_window 0s: want 100ms or more (default 10m)"},
		{"negative max bytes", "nats:\n  max_bytes: -1\n", "line 2: nats.max_bytes -1 is negative: want 0 (no limit) or the most bytes the stream keeps"},
		{"negative max msgs", "nats:\n  max_msgs: -5\n", "line 2: nats.max_msgs -5 is negative: want 0 (no limit) or the most events the stream keeps"},
		{"max bytes with a unit", "nats:\n  max_bytes: 10GB\n", "line 2: nats.max_bytes: want a whole number, got 10GB"},
		{"consumer with a dot", "nats:\n  consumer: correlate.b\n", `line 2: nats.consumer "correlate.b": a consumer name has no spaces, dots, *, >, / or \`},
		{"negative min free disk", "nats:\n  min_free_disk: -1\n", "line 2: nats.min_free_disk -1 is negative: want the free bytes to keep (default 64 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), "c.yml")
			if want := "config c.yml " + tc.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("ParseConfig = %v\nwant %s...", err, want)
			}
		})
	}
}

func TestSinksConfig(t *testing.T) {
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "slack-url")
	os.WriteFile(urlFile, []byte("https://hooks.slack.com/services/T0/B0/xyz\n"), 0o600)
	c, err := ParseConfig([]byte(`sinks:
  external_url: https://hindsight.example.com
  directory: {path: /srv/postmortems}
  webhook:
    url_file: `+urlFile+`
    bearer_token: t0ken
    headers: {X-Team: sre}
    timeout: 3s
    on: [opened, resolved]
    skip_older_than: 0
`), "c.yml")
	if err != nil {
		t.Fatal(err)
	}
	dirOpts, hook, base, err := c.Sinks.sinkOptions("127.0.0.1:9097", "hindsight-correlate")
	if err != nil {
		t.Fatal(err)
	}
	if base != "https://hindsight.example.com" || dirOpts.Path != "/srv/postmortems" || dirOpts.Consumer != "hindsight-correlate-directory" {
		t.Fatalf("external url %q, directory %+v", base, dirOpts)
	}
	if hook.URL != "https://hooks.slack.com/services/T0/B0/xyz" || hook.BearerToken != "t0ken" || hook.Headers["X-Team"] != "sre" ||
		hook.Timeout != 3*time.Second || !reflect.DeepEqual(hook.On, []string{"opened", "resolved"}) || hook.SkipOlderThan >= 0 {
		t.Fatalf("webhook = %+v", hook)
	}
	// Defaults: links to the listen address; no sinks without the section.
	c, _ = ParseConfig([]byte("sinks:\n  webhook: {url: 'http://chat.internal/hook'}\n"), "c.yml")
	if _, hook, base, _ := c.Sinks.sinkOptions("127.0.0.1:9097", "x"); base != "http://127.0.0.1:9097" || hook.SkipOlderThan != 0 || hook.Consumer != "" {
		t.Fatalf("defaults: base %q, webhook %+v", base, hook)
	}
	c, _ = ParseConfig(nil, "c.yml")
	if d, h, _, _ := c.Sinks.sinkOptions("127.0.0.1:9097", "x"); d != nil || h != nil {
		t.Fatalf("no sinks section gave %+v, %+v", d, h)
	}
}

func TestSinksConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // the message after "config c.yml ", or its start
	}{
		{"relative external url", "sinks:\n  external_url: hindsight.example.com\n",
			`line 2: sinks.external_url "hindsight.example.com": want the http:// or https:// address people reach Hindsight at`},
		{"directory without path", "sinks:\n  directory: {}\n", "line 2: sinks.directory.path is empty"},
		{"webhook without url", "sinks:\n  webhook:\n    timeout: 5s\n", "line 2: sinks.webhook: set url or url_file"},
		{"webhook url not http", "sinks:\n  webhook:\n    url: ftp://x/y\n", `line 3: sinks.webhook.url "ftp://x/y": want an http:// or https:// URL`},
		{"empty bearer token", "sinks:\n  webhook:\n    url: http://x/\n    bearer_token: \"\"\n", "line 4: sinks.webhook.bearer_token is empty"},
		{"long timeout", "sinks:\n  webhook:\n    url: http://x/\n    timeout: 5m\n", "line 4: sinks.webhook.timeout 5m0s: want a duration up to 20s"},
		{"unknown change", "sinks:\n  webhook:\n    url: http://x/\n    on: [resolved, closed]\n", `line 4: sinks.webhook.on[1] "closed": want one of opened, reopened, resolved`},
		{"header with a newline", "sinks:\n  webhook:\n    url: http://x/\n    headers:\n      X-A: \"a\\r\\nX-B: b\"\n", `line 5: sinks.webhook.headers "X-A"`},
		{"misspelt setting", "sinks:\n  webhook:\n    url: http://x/\n    bearer: t\n", "line 4: sinks.webhook: field bearer not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), "c.yml")
			if want := "config c.yml " + tc.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("ParseConfig = %v\nwant %s...", err, want)
			}
		})
	}
}
