package correlate

import (
	"fmt"
	"time"
)

// Config says how events are grouped into incidents: defaults, and rules
// that override them for the alerts they match.
type Config struct {
	// KeyLabels are tried in order; the first one present on an alert
	// gives its correlation key. Without any, the key is Alertmanager's
	// groupKey. A rule's Key replaces this for its alerts.
	KeyLabels []string
	// ReopenWindow: alerts of one key whose active spans are separated by
	// less than this belong to one incident.
	ReopenWindow time.Duration
	// ChangeLookback: deploys this long before an incident starts are
	// scored as suspected changes.
	ChangeLookback time.Duration
	// SeverityLabel names the label holding an alert's severity, and
	// TeamLabel the one naming the team that owns it.
	SeverityLabel string
	TeamLabel     string
	// OpenAfter holds back incidents of the default rule.
	OpenAfter OpenAfter
	// DeployLabels maps a deploy's fields ("service", "environment") or
	// labels to the alert labels that carry the same value. The default
	// maps service to service and environment to env.
	DeployLabels map[string]string
	// SharedLabels name places several services share (a cluster): a
	// deploy of another service with the same value is a suspect too.
	SharedLabels []string
	// RelatedWindow: incidents of other keys that start within this of
	// each other are shown as possibly related.
	RelatedWindow time.Duration
	// Rules are tried in order; the first that matches an alert decides.
	Rules []Rule
}

// DefaultConfig returns the defaults of DESIGN.md.
func DefaultConfig() Config {
	return Config{
		KeyLabels:      []string{"service", "job"},
		ReopenWindow:   10 * time.Minute,
		ChangeLookback: time.Hour,
		SeverityLabel:  "severity",
		TeamLabel:      "team",
		SharedLabels:   []string{"cluster"},
		RelatedWindow:  10 * time.Minute,
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
	switch {
	case c.ReopenWindow < 0:
		return fmt.Errorf("reopen_window %s is negative", c.ReopenWindow)
	case c.ChangeLookback < 0:
		return fmt.Errorf("change_lookback %s is negative", c.ChangeLookback)
	case c.RelatedWindow < 0:
		return fmt.Errorf("related_window %s is negative", c.RelatedWindow)
	case c.SeverityLabel == "":
		return fmt.Errorf("severity_label is empty")
	case c.OpenAfter.Alerts < 0 || c.OpenAfter.For < 0:
		return fmt.Errorf("open_after is negative")
	}
	if err := validDeployLabels(c.DeployLabels); err != nil {
		return err
	}
	return c.validateRules()
}
