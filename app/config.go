package app

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"go.yaml.in/yaml/v3"

	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/ingest"
	"github.com/hindsight-sre/hindsight/natsbus"
	"github.com/hindsight-sre/hindsight/sink"
)

// Config is the --config file: correlation, auth, limits and stream
// settings. Every field is optional.
type Config struct {
	Auth struct {
		Alertmanager CredentialsConfig `yaml:"alertmanager"`
		Deploy       CredentialsConfig `yaml:"deploy"`
		API          CredentialsConfig `yaml:"api"`
		// GitHub is the secret of the GitHub webhook calling
		// /hooks/github; without it that route takes auth.deploy's
		// credentials.
		GitHub *SecretConfig `yaml:"github"`
	} `yaml:"auth"`
	Correlation CorrelationConfig `yaml:"correlation"`
	Limits      struct {
		MaxBodyBytes             int64 `yaml:"max_body_bytes"`
		MaxAlertmanagerBodyBytes int64 `yaml:"max_alertmanager_body_bytes"`
	} `yaml:"limits"`
	NATS NATSConfig `yaml:"nats"`
	// Sinks deliver incidents outside Hindsight when they change.
	Sinks SinksConfig `yaml:"sinks"`
}

// NATSConfig is the nats section: the events stream's settings, the
// correlator's consumer, and the embedded server's settings.
//
// A stream setting the file leaves out leaves the existing stream's as it
// is (a stream Hindsight creates gets the default), so processes whose
// files differ (correlators with their own consumer, say) do not undo
// each other's settings; one the file gives is applied at startup.
type NATSConfig struct {
	// StreamReplicas of the events stream: 1 to 5 (default 1; 3 on a
	// three-node cluster).
	StreamReplicas *int `yaml:"stream_replicas"`
	// Placement constrains which servers hold the stream's replicas.
	Placement *PlacementConfig `yaml:"placement"`
	// DuplicateWindow is how long JetStream deduplicates by event ID
	// (default 10m).
	DuplicateWindow *time.Duration `yaml:"duplicate_window"`
	// MaxAge, MaxBytes and MaxMsgs bound what the stream keeps, dropping
	// the oldest events; 0 is no limit (the default).
	MaxAge   *limitDuration `yaml:"max_age"`
	MaxBytes *int64         `yaml:"max_bytes"`
	MaxMsgs  *int64         `yaml:"max_msgs"`
	// Consumer is the correlator's durable consumer name; each
	// correlator with its own state file needs its own.
	Consumer string `yaml:"consumer"`
	// SyncInterval of the embedded server; empty or "always" fsyncs
	// before every acknowledgement.
	SyncInterval string `yaml:"sync_interval"`
	// MinFreeDisk is the free space (bytes) below which the embedded
	// JetStream refuses events with 503 instead of failing a write
	// (default 64 MiB).
	MinFreeDisk int64 `yaml:"min_free_disk"`
}

// PlacementConfig is nats.placement: the stream's replicas go to servers
// of Cluster (default: the cluster of the server Hindsight connects to)
// that carry every one of Tags (nats-server's server_tags).
type PlacementConfig struct {
	Cluster string   `yaml:"cluster"`
	Tags    []string `yaml:"tags"`
}

// limitDuration is a duration that may be written 0, bare, for no limit
// (yaml takes only a string such as 0s as a time.Duration).
type limitDuration time.Duration

func (d *limitDuration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && n.Value == "0" {
		*d = 0
		return nil
	}
	var v time.Duration
	if err := n.Decode(&v); err != nil {
		return err
	}
	*d = limitDuration(v)
	return nil
}

// maxStreamReplicas is the most replicas JetStream gives a stream.
const maxStreamReplicas = 5

// check refuses nats settings that cannot work, naming the setting.
func (n NATSConfig) check() error {
	at := func(msg string, path ...any) error {
		return &settingError{path: append([]any{"nats"}, path...), msg: msg}
	}
	if r := n.StreamReplicas; r != nil && (*r < 1 || *r > maxStreamReplicas) {
		return at(fmt.Sprintf("nats.stream_replicas %d: want 1 to %d (1 for a single nats-server, 3 for a three-node cluster)", *r, maxStreamReplicas), "stream_replicas")
	}
	if p := n.Placement; p != nil {
		if p.Cluster == "" && len(p.Tags) == 0 {
			return at("nats.placement: set cluster, tags or both (leave placement out to let JetStream choose)", "placement")
		}
		if strings.ContainsAny(p.Cluster, " \t\r\n") {
			return at(fmt.Sprintf("nats.placement.cluster %q: a cluster name has no spaces", p.Cluster), "placement", "cluster")
		}
		for i, tag := range p.Tags {
			if strings.TrimSpace(tag) == "" {
				return at(fmt.Sprintf("nats.placement.tags[%d] is empty", i), "placement", "tags", i)
			}
		}
	}
	if d := n.DuplicateWindow; d != nil && *d < 100*time.Millisecond {
		return at(fmt.Sprintf("nats.duplicate_window %s: want 100ms or more (default 10m)", *d), "duplicate_window")
	}
	if n.MaxAge != nil {
		d := (*time.Duration)(n.MaxAge)
		switch {
		case *d < 0:
			return at(fmt.Sprintf("nats.max_age %s is negative: want 0 (keep events forever) or a duration such as 2160h", *d), "max_age")
		case *d > 0 && *d < 100*time.Millisecond:
			return at(fmt.Sprintf("nats.max_age %s: want 0 (keep events forever) or 100ms or more", *d), "max_age")
		case *d > 0 && n.DuplicateWindow != nil && *n.DuplicateWindow > *d:
			return at(fmt.Sprintf("nats.duplicate_window %s is longer than nats.max_age %s: JetStream cannot remember an event ID longer than it keeps the event", *n.DuplicateWindow, *d), "duplicate_window")
		}
	}
	for _, l := range []struct {
		name string
		v    *int64
		what string
	}{{"max_bytes", n.MaxBytes, "bytes"}, {"max_msgs", n.MaxMsgs, "events"}} {
		if l.v != nil && *l.v < 0 {
			return at(fmt.Sprintf("nats.%s %d is negative: want 0 (no limit) or the most %s the stream keeps", l.name, *l.v, l.what), l.name)
		}
	}
	if c := n.Consumer; c != "" && strings.ContainsAny(c, " \t\r\n\f.*>/\\") {
		return at(fmt.Sprintf("nats.consumer %q: a consumer name has no spaces, dots, *, >, / or \\", c), "consumer")
	}
	if n.MinFreeDisk < 0 {
		return at(fmt.Sprintf("nats.min_free_disk %d is negative: want the free bytes to keep (default 64 MiB)", n.MinFreeDisk), "min_free_disk")
	}
	return nil
}

// streamOptions is the stream settings the file gives, as natsbus takes
// them: zero where the file leaves a setting out, natsbus.Unlimited where
// it gives 0 for a limit.
func (n NATSConfig) streamOptions() natsbus.Options {
	var o natsbus.Options
	if n.StreamReplicas != nil {
		o.StreamReplicas = *n.StreamReplicas
	}
	if p := n.Placement; p != nil {
		o.Placement = &natsbus.Placement{Cluster: p.Cluster, Tags: slices.Clone(p.Tags)}
	}
	if n.DuplicateWindow != nil {
		o.DuplicateWindow = *n.DuplicateWindow
	}
	limit := func(v *int64) int64 {
		switch {
		case v == nil:
			return 0
		case *v == 0:
			return natsbus.Unlimited
		}
		return *v
	}
	o.MaxBytes, o.MaxMsgs = limit(n.MaxBytes), limit(n.MaxMsgs)
	if n.MaxAge != nil {
		o.MaxAge = time.Duration(*n.MaxAge)
		if o.MaxAge == 0 {
			o.MaxAge = natsbus.Unlimited
		}
	}
	return o
}

// CorrelationConfig is the correlation section: the settings of the
// default rule (alerts no rule matches), which are also the defaults of
// every rule, then the rules. docs/rules.md describes each.
type CorrelationConfig struct {
	KeyLabels      []string         `yaml:"key_labels"`
	ReopenWindow   time.Duration    `yaml:"reopen_window"`
	ChangeLookback time.Duration    `yaml:"change_lookback"`
	SeverityLabel  string           `yaml:"severity_label"`
	TeamLabel      string           `yaml:"team_label"`
	OpenAfter      *OpenAfterConfig `yaml:"open_after"`
	// DeployLabels: deploy field or label -> alert label.
	DeployLabels map[string]string `yaml:"deploy_labels"`
	// SharedLabels: nil keeps the default, [] names none.
	SharedLabels  []string      `yaml:"shared_labels"`
	RelatedWindow time.Duration `yaml:"related_window"`
	Rules         []RuleConfig  `yaml:"rules"`
}

// RuleConfig is one of correlation.rules. Match and Ignore hold
// Alertmanager matchers, one entry each (or several in one entry,
// comma-separated, as in a route's matchers). Unset settings take the
// correlation section's.
type RuleConfig struct {
	Name           string            `yaml:"name"`
	Match          []string          `yaml:"match"`
	Ignore         []string          `yaml:"ignore"`
	Key            []string          `yaml:"key"`
	OpenAfter      *OpenAfterConfig  `yaml:"open_after"`
	ReopenWindow   time.Duration     `yaml:"reopen_window"`
	ChangeLookback time.Duration     `yaml:"change_lookback"`
	SeverityLabel  string            `yaml:"severity_label"`
	TeamLabel      string            `yaml:"team_label"`
	DeployLabels   map[string]string `yaml:"deploy_labels"`
	SharedLabels   []string          `yaml:"shared_labels"`
}

// OpenAfterConfig holds an incident back until it has Alerts alert
// occurrences or one of them has fired for For.
type OpenAfterConfig struct {
	Alerts *wholeNumber  `yaml:"alerts"`
	For    time.Duration `yaml:"for"`
}

// wholeNumber is a count as the file writes it. yaml would make 1.5 a 1;
// this keeps the text for openAfter to check and name the setting.
type wholeNumber struct {
	text string
	n    int
	ok   bool
}

func (w *wholeNumber) UnmarshalYAML(n *yaml.Node) error {
	w.text = n.Value
	switch n.Kind {
	case yaml.SequenceNode:
		w.text = "(a list)"
	case yaml.MappingNode:
		w.text = "(a mapping)"
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, err := strconv.Atoi(n.Value)
		w.n, w.ok = v, err == nil
	}
	return nil
}

// CredentialsConfig is one endpoint's auth.
type CredentialsConfig struct {
	BearerToken     *string `yaml:"bearer_token"`
	BearerTokenFile string  `yaml:"bearer_token_file"`
	BasicAuth       *struct {
		Username     string `yaml:"username"`
		Password     string `yaml:"password"`
		PasswordFile string `yaml:"password_file"`
	} `yaml:"basic_auth"`
	// StandardWebhooks is a signing secret ("whsec_..."): requests
	// signed with it are accepted too. Only auth.deploy takes one.
	StandardWebhooks *SecretConfig `yaml:"standard_webhooks"`
}

// SecretConfig is a shared signing secret, inline or from a file.
type SecretConfig struct {
	Secret     *string `yaml:"secret"`
	SecretFile string  `yaml:"secret_file"`
}

// LoadConfig reads and checks a config file; "" gives the defaults.
func LoadConfig(path string) (Config, error) {
	var c Config
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig reads and checks a config document; name (its file) is for
// messages.
func ParseConfig(data []byte, name string) (Config, error) {
	var c Config
	path := name
	// The document as nodes, to find the line of a setting the checks
	// below refuse.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return c, fmt.Errorf("config %s%s", path, yamlMessage(err, nil))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s%s", path, yamlMessage(err, &root))
	}
	// located names the file, and the line of the setting at fault.
	located := func(err error) error {
		var se *settingError
		if errors.As(err, &se) {
			if line := lineOf(&root, se.path); line > 0 {
				return fmt.Errorf("config %s line %d: %w", path, line, err)
			}
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := c.CorrelateConfig(); err != nil {
		return c, located(err)
	}
	if c.Limits.MaxBodyBytes < 0 || c.Limits.MaxAlertmanagerBodyBytes < 0 {
		return c, fmt.Errorf("config %s: limits: a body limit is negative", path)
	}
	if _, err := c.syncInterval(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.NATS.check(); err != nil {
		return c, located(err)
	}
	if err := c.Sinks.check(); err != nil {
		return c, located(err)
	}
	return c, nil
}

// unknownField and badType are yaml's messages for a setting the file
// misspells or gives the wrong type, which name Go types that mean nothing
// to the person who wrote the file.
var (
	unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	badType      = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) (?:`([^`]*)` )?into (\\S+)$")
	goTypes      = regexp.MustCompile(` (in|into) type [^\n]*`)
)

// yamlMessage turns a yaml error into ": what" or " line N: what" for
// the person who wrote the file, naming the setting at fault where root
// (when given) shows it.
func yamlMessage(err error, root *yaml.Node) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	errs := strings.Split(msg, "\n  ")
	for i, e := range errs {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			where, _ := findPath(root, func(k, _ *yaml.Node) bool { return k != nil && k.Line == line && k.Value == m[2] })
			if where != "" {
				where += ": "
			}
			errs[i] = fmt.Sprintf("line %s: %sfield %s not found (no such setting; see deploy/hindsight.yml)", m[1], where, m[2])
		} else if m := badType.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			_, where := findPath(root, func(_, v *yaml.Node) bool {
				// yaml shortens long values to their first 7 bytes and "...".
				short := strings.TrimSuffix(m[3], "...")
				return v.Line == line && v.ShortTag() == "!!"+m[2] && (v.Value == m[3] || short != m[3] && strings.HasPrefix(v.Value, short))
			})
			if where != "" {
				where += ": "
			}
			got := m[3]
			if got == "" {
				got = yamlKinds[m[2]]
			}
			errs[i] = fmt.Sprintf("line %s: %swant %s, got %s", m[1], where, goKind(m[4]), got)
		} else {
			errs[i] = goTypes.ReplaceAllString(e, "")
		}
	}
	msg = strings.Join(errs, "\n  ")
	if strings.HasPrefix(msg, "line ") {
		return " " + msg
	}
	return ": " + msg
}

var yamlKinds = map[string]string{"map": "a mapping", "seq": "a list", "str": "a string", "int": "a number", "float": "a number", "bool": "true or false", "null": "nothing"}

// goKind says what the file should hold where yaml wanted Go type t.
func goKind(t string) string {
	switch {
	case t == "time.Duration":
		return "a duration (like 10m or 1h30m)"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return "a mapping"
}

// A settingError is a setting that cannot work. Its message names the
// setting as the reader finds it in the file; path locates it (mapping
// keys and sequence indexes from the document root) so that LoadConfig
// can add the line.
type settingError struct {
	path []any
	msg  string
}

func (e *settingError) Error() string { return e.msg }

// lineOf returns the line of the setting at path, or of the deepest part
// of it present in the document (0: none).
func lineOf(doc *yaml.Node, path []any) int {
	n, line := doc, 0
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, p := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next, line = n.Content[i+1], n.Content[i].Line
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next, line = n.Content[p], n.Content[p].Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// findPath returns the first setting in doc for which match (given the
// mapping key, nil for a list item, and the value) holds: the path of the
// section holding it ("correlation.rules[0] (prod)", "" at the top) and
// its own ("correlation.rules[0] (prod).key"). Both are "" when none does.
func findPath(doc *yaml.Node, match func(k, v *yaml.Node) bool) (section, setting string) {
	var walk func(n *yaml.Node, at string) bool
	walk = func(n *yaml.Node, at string) bool {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if walk(c, at) {
					return true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				sub := k.Value
				if at != "" {
					sub = at + "." + k.Value
				}
				if match(k, v) {
					section, setting = at, sub
					return true
				}
				if walk(v, sub) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				sub := at + itemName(c, i)
				if match(nil, c) {
					section, setting = at, sub
					return true
				}
				if walk(c, sub) {
					return true
				}
			}
		}
		return false
	}
	if doc != nil {
		walk(doc, "")
	}
	return section, setting
}

// itemName names the i-th item of a list: "[1]", or "[1] (name)" for an
// item with a name (a rule).
func itemName(n *yaml.Node, i int) string {
	s := fmt.Sprintf("[%d]", i)
	for j := 0; n.Kind == yaml.MappingNode && j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode && n.Content[j+1].Value != "" {
			s += " (" + n.Content[j+1].Value + ")"
		}
	}
	return s
}

// CorrelateConfig is the correlation settings over the defaults. An error
// names the setting at fault (correlation.rules[1] (name).match[0] ...).
func (c Config) CorrelateConfig() (correlate.Config, error) {
	x := c.Correlation
	cc := correlate.DefaultConfig()
	if len(x.KeyLabels) > 0 {
		cc.KeyLabels = x.KeyLabels
	}
	if x.ReopenWindow != 0 {
		cc.ReopenWindow = x.ReopenWindow
	}
	if x.ChangeLookback != 0 {
		cc.ChangeLookback = x.ChangeLookback
	}
	if x.SeverityLabel != "" {
		cc.SeverityLabel = x.SeverityLabel
	}
	if x.TeamLabel != "" {
		cc.TeamLabel = x.TeamLabel
	}
	if x.RelatedWindow != 0 {
		cc.RelatedWindow = x.RelatedWindow
	}
	if x.DeployLabels != nil {
		cc.DeployLabels = x.DeployLabels
	}
	if x.SharedLabels != nil {
		cc.SharedLabels = x.SharedLabels
	}
	at := []any{"correlation"}
	if x.OpenAfter != nil {
		o, err := x.OpenAfter.openAfter("correlation.open_after", append(at, "open_after"))
		if err != nil {
			return cc, err
		}
		cc.OpenAfter = o
	}
	// The section without rules first, then one rule more at a time: the
	// first prefix correlate refuses holds the rule at fault.
	if err := cc.Validate(); err != nil {
		return cc, validateError(err, "correlation", "", at)
	}
	for i, rc := range x.Rules {
		at := []any{"correlation", "rules", i}
		name := fmt.Sprintf("rules[%d]", i)
		if rc.Name != "" {
			name += " (" + rc.Name + ")"
		}
		r, err := rc.rule("correlation."+name, at)
		if err != nil {
			return cc, err
		}
		cc.Rules = append(cc.Rules, r)
		if err := cc.Validate(); err != nil {
			return cc, validateError(err, "correlation."+name, name, at)
		}
	}
	return cc, nil
}

// validateError locates an error of correlate's Validate: under at, at
// the setting its message starts with when the file has it. correlate
// names a rule's errors "rules[i] (name): ..."; prefix is that part.
func validateError(err error, name, prefix string, at []any) error {
	msg := err.Error()
	if prefix != "" {
		msg = strings.TrimPrefix(msg, prefix+": ")
	}
	path := at
	// "key[0] is empty", "open_after.for -5m is negative": the setting.
	if tok, _, ok := strings.Cut(msg, " "); ok {
		sub := append([]any(nil), at...)
		for _, part := range strings.Split(strings.TrimSuffix(tok, ":"), ".") {
			k, idx, indexed := strings.Cut(part, "[")
			sub = append(sub, k)
			if i, err := strconv.Atoi(strings.TrimSuffix(idx, "]")); indexed && err == nil {
				sub = append(sub, i)
			}
		}
		path = sub
	}
	return &settingError{path: path, msg: name + ": " + msg}
}

// rule maps one rule; name is how messages call it.
func (rc RuleConfig) rule(name string, at []any) (correlate.Rule, error) {
	r := correlate.Rule{
		Name:           rc.Name,
		Key:            rc.Key,
		ReopenWindow:   rc.ReopenWindow,
		ChangeLookback: rc.ChangeLookback,
		SeverityLabel:  rc.SeverityLabel,
		TeamLabel:      rc.TeamLabel,
		DeployLabels:   rc.DeployLabels,
		SharedLabels:   rc.SharedLabels,
	}
	var err error
	if r.Match, err = matchers(rc.Match, name+".match", append(at, "match")); err != nil {
		return r, err
	}
	if r.Ignore, err = matchers(rc.Ignore, name+".ignore", append(at, "ignore")); err != nil {
		return r, err
	}
	if rc.OpenAfter != nil {
		if r.OpenAfter, err = rc.OpenAfter.openAfter(name+".open_after", append(at, "open_after")); err != nil {
			return r, err
		}
	}
	return r, nil
}

// matchers parses a list of matchers with Alertmanager's own parser, as
// Alertmanager parses a route's matchers: an entry may hold several,
// comma-separated, and braces around them.
func matchers(entries []string, name string, at []any) ([]*labels.Matcher, error) {
	var ms []*labels.Matcher
	for i, s := range entries {
		where := &settingError{path: append(slices.Clip(at), i), msg: fmt.Sprintf("%s[%d] %q: ", name, i, s)}
		m, err := labels.ParseMatchers(s)
		switch {
		case err != nil:
			where.msg += "bad matcher: " + err.Error()
			return nil, where
		case len(m) == 0:
			where.msg += `no matcher: want one like severity="critical"`
			return nil, where
		}
		ms = append(ms, m...)
	}
	return ms, nil
}

func (o OpenAfterConfig) openAfter(name string, at []any) (correlate.OpenAfter, error) {
	var out correlate.OpenAfter
	switch {
	case o.Alerts == nil && o.For == 0:
		return out, &settingError{path: at, msg: name + ": set alerts (a count, like 2), for (a duration, like 5m) or both"}
	case o.Alerts != nil && (!o.Alerts.ok || o.Alerts.n < 1):
		return out, &settingError{path: append(slices.Clip(at), "alerts"), msg: fmt.Sprintf("%s.alerts %s: want a whole number, 1 or more", name, o.Alerts.text)}
	case o.For < 0:
		return out, &settingError{path: append(slices.Clip(at), "for"), msg: fmt.Sprintf("%s.for %s is negative", name, o.For)}
	}
	if o.Alerts != nil {
		out.Alerts = o.Alerts.n
	}
	out.For = o.For
	return out, nil
}

func (c Config) syncInterval() (time.Duration, error) {
	switch v := c.NATS.SyncInterval; v {
	case "", "always":
		return 0, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("nats.sync_interval %q: want \"always\" or a positive duration such as 2m", v)
		}
		return d, nil
	}
}

// auth resolves the credentials, reading secret files.
func (c Config) auth() (ingest.AuthConfig, error) {
	var a ingest.AuthConfig
	var err error
	for _, x := range []struct {
		name string
		in   CredentialsConfig
		out  *ingest.Credentials
	}{{"alertmanager", c.Auth.Alertmanager, &a.Alertmanager}, {"deploy", c.Auth.Deploy, &a.Deploy}, {"api", c.Auth.API, &a.API}} {
		if *x.out, err = x.in.resolve(); err != nil {
			return a, fmt.Errorf("auth.%s: %w", x.name, err)
		}
		if x.in.StandardWebhooks != nil && x.name != "deploy" {
			return a, fmt.Errorf("auth.%s: standard_webhooks is accepted only under auth.deploy", x.name)
		}
	}
	if sw := c.Auth.Deploy.StandardWebhooks; sw != nil {
		if a.DeployStandardWebhooksSecret, err = sw.resolve(); err != nil {
			return a, fmt.Errorf("auth.deploy.standard_webhooks: %w", err)
		}
	}
	if gh := c.Auth.GitHub; gh != nil {
		if a.GitHubSecret, err = gh.resolve(); err != nil {
			return a, fmt.Errorf("auth.github: %w", err)
		}
	}
	return a, nil
}

func (sc SecretConfig) resolve() (string, error) {
	switch {
	case sc.Secret != nil && sc.SecretFile != "":
		return "", errors.New("set secret or secret_file, not both")
	case sc.SecretFile != "":
		return readSecret(sc.SecretFile)
	case sc.Secret == nil:
		return "", errors.New("set secret or secret_file")
	case *sc.Secret == "":
		// An unset variable in a templated config, most likely.
		return "", errors.New("secret is empty")
	}
	return *sc.Secret, nil
}

func (cc CredentialsConfig) resolve() (ingest.Credentials, error) {
	var out ingest.Credentials
	if cc.BearerToken != nil && cc.BearerTokenFile != "" {
		return out, errors.New("set bearer_token or bearer_token_file, not both")
	}
	if cc.BearerToken != nil {
		if *cc.BearerToken == "" {
			// An unset variable in a templated config, most likely:
			// refuse rather than run without the auth that was meant.
			return out, errors.New("bearer_token is empty")
		}
		out.BearerToken = *cc.BearerToken
	}
	if cc.BearerTokenFile != "" {
		t, err := readSecret(cc.BearerTokenFile)
		if err != nil {
			return out, err
		}
		out.BearerToken = t
	}
	if b := cc.BasicAuth; b != nil {
		if b.Username == "" {
			return out, errors.New("basic_auth.username is empty")
		}
		if b.Password != "" && b.PasswordFile != "" {
			return out, errors.New("set basic_auth.password or password_file, not both")
		}
		out.Username, out.Password = b.Username, b.Password
		if b.PasswordFile != "" {
			p, err := readSecret(b.PasswordFile)
			if err != nil {
				return out, err
			}
			out.Password = p
		}
		if out.Password == "" {
			return out, errors.New("basic_auth has no password")
		}
	}
	return out, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// SinksConfig is the sinks section: where incidents go when they change
// (docs/sinks.md). Sinks run in processes with the correlate role.
type SinksConfig struct {
	// ExternalURL is the base of the links sinks send (default
	// http://<listen address>).
	ExternalURL string               `yaml:"external_url"`
	Directory   *DirectorySinkConfig `yaml:"directory"`
	Webhook     *WebhookSinkConfig   `yaml:"webhook"`
}

// DirectorySinkConfig is sinks.directory: each published postmortem is
// written to Path as <YYYY-MM-DD>-<service>-<incident id>.md.
type DirectorySinkConfig struct {
	Path string `yaml:"path"`
	// Consumer names the sink's durable consumer (default: the
	// correlator's consumer name and -directory).
	Consumer string `yaml:"consumer"`
}

// WebhookSinkConfig is sinks.webhook: a JSON summary POSTed on the
// changes On names (default resolved).
type WebhookSinkConfig struct {
	// URL, or URLFile holding it (a Slack webhook URL is a secret).
	URL             string            `yaml:"url"`
	URLFile         string            `yaml:"url_file"`
	BearerToken     *string           `yaml:"bearer_token"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	Headers         map[string]string `yaml:"headers"`
	Timeout         time.Duration     `yaml:"timeout"`
	On              []string          `yaml:"on"`
	// SkipOlderThan: changes that happened longer ago are not posted
	// (default 1h; 0 posts every change, however old).
	SkipOlderThan *limitDuration `yaml:"skip_older_than"`
	// Consumer names the sink's durable consumer (default
	// hindsight-sink-webhook, shared by replicas so each posts once).
	Consumer string `yaml:"consumer"`
}

// maxWebhookTimeout bounds sinks.webhook.timeout: a request must end well
// within the notice consumer's ack wait.
const maxWebhookTimeout = 20 * time.Second

// check refuses sinks settings that cannot work, naming the setting.
func (s SinksConfig) check() error {
	at := func(msg string, path ...any) error {
		return &settingError{path: append([]any{"sinks"}, path...), msg: msg}
	}
	httpURL := func(raw string) bool {
		u, err := url.Parse(raw)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
	}
	if s.ExternalURL != "" && !httpURL(s.ExternalURL) {
		return at(fmt.Sprintf("sinks.external_url %q: want the http:// or https:// address people reach Hindsight at", s.ExternalURL), "external_url")
	}
	validConsumer := func(c string) bool { return !strings.ContainsAny(c, " \t\r\n\f.*>/\\") }
	if d := s.Directory; d != nil {
		if strings.TrimSpace(d.Path) == "" {
			return at("sinks.directory.path is empty: want the directory postmortems are written to", "directory", "path")
		}
		if !validConsumer(d.Consumer) {
			return at(fmt.Sprintf("sinks.directory.consumer %q: a consumer name has no spaces, dots, *, >, / or \\", d.Consumer), "directory", "consumer")
		}
	}
	w := s.Webhook
	if w == nil {
		return nil
	}
	switch {
	case w.URL == "" && w.URLFile == "":
		return at("sinks.webhook: set url or url_file", "webhook")
	case w.URL != "" && w.URLFile != "":
		return at("sinks.webhook: set url or url_file, not both", "webhook", "url")
	case w.URL != "" && !httpURL(w.URL):
		return at(fmt.Sprintf("sinks.webhook.url %q: want an http:// or https:// URL", w.URL), "webhook", "url")
	case w.BearerToken != nil && w.BearerTokenFile != "":
		return at("sinks.webhook: set bearer_token or bearer_token_file, not both", "webhook", "bearer_token")
	case w.BearerToken != nil && *w.BearerToken == "":
		// An unset variable in a templated config, most likely.
		return at("sinks.webhook.bearer_token is empty", "webhook", "bearer_token")
	case w.Timeout < 0 || w.Timeout > maxWebhookTimeout:
		return at(fmt.Sprintf("sinks.webhook.timeout %s: want a duration up to %s (default 5s)", w.Timeout, maxWebhookTimeout), "webhook", "timeout")
	case w.SkipOlderThan != nil && *w.SkipOlderThan < 0:
		return at(fmt.Sprintf("sinks.webhook.skip_older_than %s is negative: want 0 (post every change) or a duration such as 1h", time.Duration(*w.SkipOlderThan)), "webhook", "skip_older_than")
	case !validConsumer(w.Consumer):
		return at(fmt.Sprintf("sinks.webhook.consumer %q: a consumer name has no spaces, dots, *, >, / or \\", w.Consumer), "webhook", "consumer")
	}
	for name, v := range w.Headers {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") || strings.ContainsAny(v, "\r\n") {
			return at(fmt.Sprintf("sinks.webhook.headers %q: want a header name without spaces or colons, and a value on one line", name), "webhook", "headers", name)
		}
	}
	for i, c := range w.On {
		if !slices.Contains(sink.WebhookChanges, c) {
			return at(fmt.Sprintf("sinks.webhook.on[%d] %q: want one of %s", i, c, strings.Join(sink.WebhookChanges, ", ")), "webhook", "on", i)
		}
	}
	return nil
}

// sinkOptions is the sinks the file configures, as package sink takes
// them, with secret files read; listen is the address links default to,
// consumer the correlator's consumer name.
func (s SinksConfig) sinkOptions(listen, consumer string) (dir *sink.DirectoryOptions, hook *sink.WebhookOptions, externalURL string, err error) {
	externalURL = s.ExternalURL
	if externalURL == "" {
		externalURL = "http://" + listen
	}
	if d := s.Directory; d != nil {
		dir = &sink.DirectoryOptions{Path: d.Path, Consumer: cmp.Or(d.Consumer, consumer+"-directory")}
	}
	if w := s.Webhook; w != nil {
		hook = &sink.WebhookOptions{URL: w.URL, Headers: w.Headers, Timeout: w.Timeout, On: w.On, Consumer: w.Consumer}
		if w.URLFile != "" {
			if hook.URL, err = readSecret(w.URLFile); err != nil {
				return nil, nil, "", fmt.Errorf("sinks.webhook.url_file: %w", err)
			}
			if u, perr := url.Parse(hook.URL); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, nil, "", fmt.Errorf("sinks.webhook.url_file %s: want an http:// or https:// URL in it", w.URLFile)
			}
		}
		if w.BearerToken != nil {
			hook.BearerToken = *w.BearerToken
		}
		if w.BearerTokenFile != "" {
			if hook.BearerToken, err = readSecret(w.BearerTokenFile); err != nil {
				return nil, nil, "", fmt.Errorf("sinks.webhook.bearer_token_file: %w", err)
			}
		}
		if w.SkipOlderThan != nil {
			hook.SkipOlderThan = time.Duration(*w.SkipOlderThan)
			if hook.SkipOlderThan == 0 {
				hook.SkipOlderThan = -1 // never skip
			}
		}
	}
	return dir, hook, externalURL, nil
}
