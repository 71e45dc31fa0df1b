package correlate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/hindsight-sre/hindsight"
)

// Rule says how the alerts it matches are grouped into incidents. Rules
// are tried in order and the first whose Match selects an alert decides,
// like Alertmanager's routes. Zero settings take the Config's defaults,
// except OpenAfter: a rule's own, so a rule opens at the first alert
// unless it says otherwise.
type Rule struct {
	// Name identifies the rule in reasons and keys; unique, made of
	// letters, digits, '-' and '_'.
	Name string
	// Match selects alerts: every matcher must match (none: every alert).
	Match []*labels.Matcher
	// Ignore drops alerts the rule selected when every matcher matches:
	// they are kept in the store but join no incident.
	Ignore []*labels.Matcher
	// Key names the labels whose values together form the correlation
	// key. Empty takes the Config's KeyLabels (the first one present).
	Key []string
	// OpenAfter holds back an incident until it is more than a blip. It
	// does not inherit Config.OpenAfter, which is the default rule's.
	OpenAfter OpenAfter
	// The settings below override the Config's when set.
	ReopenWindow   time.Duration
	ChangeLookback time.Duration
	SeverityLabel  string
	TeamLabel      string
	DeployLabels   map[string]string
	SharedLabels   []string
}

// OpenAfter: an incident opens once it has at least Alerts alert
// occurrences, or once one of its alerts has fired for For (of event
// time). Zero in both opens it at the first alert. Until then the group is
// pending; one that resolves first is suppressed. Its events are kept
// either way, and join the incident if it opens.
type OpenAfter struct {
	Alerts int
	For    time.Duration
}

func (o OpenAfter) zero() bool { return o.Alerts <= 1 && o.For <= 0 }

func (o OpenAfter) String() string {
	var s []string
	if o.Alerts > 1 {
		s = append(s, fmt.Sprintf("alerts: %d", o.Alerts))
	}
	if o.For > 0 {
		s = append(s, "for: "+hindsight.FormatDuration(o.For))
	}
	return strings.Join(s, ", ")
}

var ruleName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validateRules reports the first rule that cannot work, naming it by its
// position and name.
func (c Config) validateRules() error {
	seen := map[string]bool{}
	for i, r := range c.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if r.Name != "" {
			where += fmt.Sprintf(" (%s)", r.Name)
		}
		switch {
		case r.Name == "":
			return fmt.Errorf("%s: name is missing", where)
		case !ruleName.MatchString(r.Name):
			return fmt.Errorf("%s: name %q may only hold letters, digits, '-' and '_'", where, r.Name)
		case r.Name == defaultRuleName:
			return fmt.Errorf("%s: the name %q is the default rule's; choose another", where, r.Name)
		case seen[r.Name]:
			return fmt.Errorf("%s: another rule is named %q", where, r.Name)
		case r.ReopenWindow < 0:
			return fmt.Errorf("%s: reopen_window %s is negative", where, r.ReopenWindow)
		case r.ChangeLookback < 0:
			return fmt.Errorf("%s: change_lookback %s is negative", where, r.ChangeLookback)
		case r.OpenAfter.Alerts < 0:
			return fmt.Errorf("%s: open_after.alerts %d is negative", where, r.OpenAfter.Alerts)
		case r.OpenAfter.For < 0:
			return fmt.Errorf("%s: open_after.for %s is negative", where, r.OpenAfter.For)
		}
		seen[r.Name] = true
		for j, l := range r.Key {
			if l == "" {
				return fmt.Errorf("%s: key[%d] is empty", where, j)
			}
			if slices.Contains(r.Key[:j], l) {
				return fmt.Errorf("%s: key names %s twice", where, l)
			}
		}
		if err := validDeployLabels(r.DeployLabels); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

func validDeployLabels(m map[string]string) error {
	for k, v := range m {
		if k == "" || v == "" {
			return fmt.Errorf("deploy_labels maps %q to %q: both sides must be named", k, v)
		}
	}
	return nil
}

// settings is a rule with the Config's defaults filled in.
type settings struct {
	Rule
	keyFallback []string // the default rule's first-present key labels
}

// ruleSettings returns the effective settings of the named rule ("" is
// the default rule, which applies when no rule matches).
func (c Config) ruleSettings(name string) settings {
	s := settings{Rule: Rule{OpenAfter: c.OpenAfter}}
	for _, r := range c.Rules {
		if r.Name == name {
			s.Rule = r
			break
		}
	}
	if len(s.Key) == 0 {
		s.keyFallback = c.KeyLabels
	}
	if s.ReopenWindow == 0 {
		s.ReopenWindow = c.ReopenWindow
	}
	if s.ChangeLookback == 0 {
		s.ChangeLookback = c.ChangeLookback
	}
	if s.SeverityLabel == "" {
		s.SeverityLabel = c.SeverityLabel
	}
	if s.TeamLabel == "" {
		s.TeamLabel = c.TeamLabel
	}
	dl := map[string]string{"service": "service", "environment": "env"}
	for k, v := range c.DeployLabels {
		dl[k] = v
	}
	for k, v := range s.DeployLabels {
		dl[k] = v
	}
	s.DeployLabels = dl
	if s.SharedLabels == nil {
		s.SharedLabels = c.SharedLabels
	}
	return s
}

// Placement says where an event goes: its correlation key, the rule that
// placed it, and why, in words for the timeline.
type Placement struct {
	Key  string
	Rule string
	// Ignored: a rule's ignore matchers dropped the alert.
	Ignored bool
	Why     string
}

// ruleFor returns the first rule whose Match selects the labels, or nil.
func (c Config) ruleFor(ls map[string]string) *Rule {
	for i := range c.Rules {
		if matchAll(c.Rules[i].Match, ls) {
			return &c.Rules[i]
		}
	}
	return nil
}

func matchAll(ms []*labels.Matcher, ls map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

func matchersString(ms []*labels.Matcher) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	return strings.Join(s, ", ")
}

// Place returns an event's placement. Alerts go by the rules; deploys by
// their service; notes with the incident they were written on.
func (c Config) Place(e *hindsight.Event) Placement {
	switch {
	case e.Kind.IsAlert():
		return c.placeAlert(e)
	case e.Kind.IsDeploy():
		return Placement{Key: e.Service, Why: fmt.Sprintf("deploy of service %q", e.Service)}
	case e.Note != nil:
		return Placement{Key: e.Note.Key, Why: "note on incident " + e.Note.IncidentID}
	case e.Human != nil:
		return Placement{Key: e.Human.Key, Why: string(e.Kind) + " on incident " + e.Human.IncidentID}
	}
	return Placement{Key: e.Service, Why: fmt.Sprintf("service %q", e.Service)}
}

func (c Config) placeAlert(e *hindsight.Event) Placement {
	r := c.ruleFor(e.Labels)
	if r == nil {
		key, why := c.defaultKey(e)
		return Placement{Key: key, Why: why}
	}
	p := Placement{Rule: r.Name}
	if len(r.Ignore) > 0 && matchAll(r.Ignore, e.Labels) {
		p.Ignored = true
		p.Why = fmt.Sprintf("rule %s ignores it (%s)", r.Name, matchersString(r.Ignore))
		return p
	}
	if len(r.Key) == 0 {
		key, why := c.defaultKey(e)
		p.Key, p.Why = r.Name+"/"+key, "rule "+r.Name+": "+why
		return p
	}
	parts := make([]string, len(r.Key))
	for i, l := range r.Key {
		parts[i] = l + "=" + quoteIfNeeded(e.Labels[l])
	}
	vals := strings.Join(parts, ",")
	p.Key = r.Name + "/" + vals
	p.Why = "rule " + r.Name + ": key " + vals
	return p
}

func quoteIfNeeded(v string) string {
	if v == "" || strings.ContainsAny(v, `,="\ `) {
		return fmt.Sprintf("%q", v)
	}
	return v
}

// defaultRuleName is reserved: the default rule's keys may carry it.
const defaultRuleName = "default"

// defaultKey is the key of the default rule: the first of KeyLabels
// present on the alert, else Alertmanager's group key.
func (c Config) defaultKey(e *hindsight.Event) (key, why string) {
	for _, l := range c.KeyLabels {
		if v := e.Labels[l]; v != "" {
			return c.unambiguous(v), fmt.Sprintf("key %s=%s", l, quoteIfNeeded(v))
		}
	}
	if e.Alert != nil && e.Alert.GroupKey != "" {
		return c.unambiguous(e.Alert.GroupKey), fmt.Sprintf("key Alertmanager group %s (no %s label)", e.Alert.GroupKey, strings.Join(c.KeyLabels, " or "))
	}
	return "", "no key label and no group key"
}

// unambiguous keeps a default-rule key apart from rules' keys, which are
// "<rule>/<values>": a value that reads like one ("monitoring/node-exporter"
// when a rule is named monitoring) is prefixed with "default/".
func (c Config) unambiguous(v string) string {
	prefix, _, found := strings.Cut(v, "/")
	if !found {
		return v
	}
	if prefix == defaultRuleName || slices.ContainsFunc(c.Rules, func(r Rule) bool { return r.Name == prefix }) {
		return defaultRuleName + "/" + v
	}
	return v
}

// maxReopen is the longest reopen window of any rule.
func (c Config) maxReopen() time.Duration {
	m := c.ReopenWindow
	for _, r := range c.Rules {
		m = max(m, r.ReopenWindow)
	}
	return m
}
