package hindsight

import "time"

// Status is an incident's state.
type Status string

const (
	StatusOpen     Status = "open"
	StatusResolved Status = "resolved"
)

// Incident is a set of alerts of one correlation key whose active spans
// overlap or lie within the reopen window of each other, with the deploys
// and notes around them.
type Incident struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   Status `json:"status"`
	Severity string `json:"severity"`
	Service  string `json:"service"`
	// Key is the correlation key value that groups the incident's events,
	// KeyLabels the labels it was built from.
	Key       string            `json:"key"`
	KeyLabels map[string]string `json:"key_labels,omitempty"`

	StartedAt  time.Time  `json:"started_at"`
	DetectedAt *time.Time `json:"detected_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	// TimeToDetect and TimeToResolve are in seconds; nil when unknown (a
	// backfilled incident) or not yet reached.
	TimeToDetect  *Seconds `json:"time_to_detect_seconds"`
	TimeToResolve *Seconds `json:"time_to_resolve_seconds"`

	Alerts           []AlertSummary    `json:"alerts"`
	Timeline         []TimelineEntry   `json:"timeline"`
	SuspectedChanges []SuspectedChange `json:"suspected_changes"`
	// Lifecycle says why the incident opened, resolved and reopened.
	Lifecycle []LifecycleChange `json:"lifecycle"`
	Reopened  int               `json:"reopened"`
	// Anchor is the alert occurrence the ID derives from: the earliest.
	Anchor string `json:"anchor"`
}

// Seconds is a duration in seconds, as JSON numbers carry it.
type Seconds float64

// Duration converts s back to a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// AlertSummary is one alert occurrence of an incident.
type AlertSummary struct {
	Name        string            `json:"name"`
	Fingerprint string            `json:"fingerprint"`
	Severity    string            `json:"severity,omitempty"`
	Instance    string            `json:"instance,omitempty"`
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
	// ReceivedAt is when Hindsight first heard of this occurrence.
	ReceivedAt   time.Time `json:"received_at"`
	GeneratorURL string    `json:"generator_url,omitempty"`
	RunbookURL   string    `json:"runbook_url,omitempty"`
	DashboardURL string    `json:"dashboard_url,omitempty"`
}

// TimelineEntry is one line of an incident's timeline.
type TimelineEntry struct {
	ID      string    `json:"id"` // the event's ID
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Source  Source    `json:"source"`
	Summary string    `json:"summary"`
	// Reason says why the entry is on this incident's timeline.
	Reason string `json:"reason"`
	// Detection marks the entry at which the incident was first detected.
	Detection bool              `json:"detection,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	URL       string            `json:"url,omitempty"`
}

// SuspectedChange is a deploy that happened shortly before an incident
// started. It is a suspicion, never a root cause.
type SuspectedChange struct {
	EventID       string    `json:"event_id"`
	Time          time.Time `json:"time"`
	Service       string    `json:"service"`
	Environment   string    `json:"environment,omitempty"`
	Version       string    `json:"version,omitempty"`
	Status        string    `json:"status"`
	Actor         string    `json:"actor,omitempty"`
	Commit        string    `json:"commit,omitempty"`
	URL           string    `json:"url,omitempty"`
	Description   string    `json:"description,omitempty"`
	MinutesBefore float64   `json:"minutes_before"`
	Score         float64   `json:"score"`
	Reason        string    `json:"reason"`
}

// LifecycleChange records one transition of an incident and why.
type LifecycleChange struct {
	Time   time.Time `json:"time"`
	Status string    `json:"status"` // opened, resolved, reopened
	Reason string    `json:"reason"`
}

// Duration returns how long the incident lasted, or has lasted until
// asOf if it is still open.
func (inc *Incident) Duration(asOf time.Time) time.Duration {
	if inc.ResolvedAt != nil {
		return inc.ResolvedAt.Sub(inc.StartedAt)
	}
	return asOf.Sub(inc.StartedAt)
}
