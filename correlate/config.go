package correlate

import (
	"fmt"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// Config says how events are grouped into incidents.
type Config struct {
	// KeyLabels are tried in order; the first one present on an alert
	// gives its correlation key. Without any, the key is Alertmanager's
	// groupKey. Deploys use their service.
	KeyLabels []string
	// ReopenWindow: alerts of one key whose active spans are separated by
	// less than this belong to one incident.
	ReopenWindow time.Duration
	// ChangeLookback: deploys this long before an incident starts are
	// suspected changes.
	ChangeLookback time.Duration
	// SeverityLabel names the label holding an alert's severity.
	SeverityLabel string
}

// DefaultConfig returns the defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		KeyLabels:      []string{"service", "job"},
		ReopenWindow:   10 * time.Minute,
		ChangeLookback: time.Hour,
		SeverityLabel:  "severity",
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if len(c.KeyLabels) == 0 {
		return fmt.Errorf("key_labels is empty: name at least one label (for example service)")
	}
	for _, l := range c.KeyLabels {
		if l == "" {
			return fmt.Errorf("key_labels has an empty label name")
		}
	}
	if c.ReopenWindow < 0 {
		return fmt.Errorf("reopen_window %s is negative", c.ReopenWindow)
	}
	if c.ChangeLookback < 0 {
		return fmt.Errorf("change_lookback %s is negative", c.ChangeLookback)
	}
	if c.SeverityLabel == "" {
		return fmt.Errorf("severity_label is empty")
	}
	return nil
}

// Key returns the correlation key of an event and a sentence saying how
// it was formed. Every event has a key.
func (c Config) Key(e *hindsight.Event) (key, why string) {
	switch {
	case e.Kind.IsAlert():
		for _, l := range c.KeyLabels {
			if v := e.Labels[l]; v != "" {
				return v, fmt.Sprintf("label %s=%q", l, v)
			}
		}
		if e.Alert != nil && e.Alert.GroupKey != "" {
			return e.Alert.GroupKey, fmt.Sprintf("Alertmanager group %s (no %v label)", e.Alert.GroupKey, c.KeyLabels)
		}
		return "", "no key label and no group key"
	case e.Kind.IsDeploy():
		return e.Service, fmt.Sprintf("deploy of service %q", e.Service)
	case e.Note != nil:
		return e.Note.Key, "note on incident " + e.Note.IncidentID
	}
	return e.Service, fmt.Sprintf("service %q", e.Service)
}
