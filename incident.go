package hindsight

import "time"

// Status is an incident's state.
type Status string

const (
	StatusOpen     Status = "open"
	StatusResolved Status = "resolved"
	// StatusPending: alerts that a rule's open_after holds back, still
	// firing; the incident opens if they qualify.
	StatusPending Status = "pending"
	// StatusSuppressed: alerts that a rule's open_after held back and
	// that resolved before they qualified: noise, kept for the record.
	StatusSuppressed Status = "suppressed"
)

// Opened reports whether the status is one of an incident that opened.
func (s Status) Opened() bool { return s == StatusOpen || s == StatusResolved }

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
	// Rule is the correlation rule that grouped it ("" the default).
	Rule string `json:"rule,omitempty"`
	Team string `json:"team,omitempty"`
	// OpensAt is when a pending incident opens if its alerts still fire.
	OpensAt *time.Time `json:"opens_at,omitempty"`

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
	// Related are incidents of other keys that started close to this one.
	Related []RelatedIncident `json:"related"`
	// Lifecycle says why the incident opened, resolved and reopened.
	Lifecycle []LifecycleChange `json:"lifecycle"`
	Reopened  int               `json:"reopened"`
	// Anchor is the alert occurrence the ID derives from: the earliest.
	Anchor string `json:"anchor"`
	// Declared is set when a human declared the incident by hand.
	Declared bool `json:"declared,omitempty"`
	// Postmortem is what humans wrote and decided about the draft. Its
	// corrected impact start, if any, is what TimeToDetect and
	// TimeToResolve count from.
	Postmortem Postmortem `json:"postmortem"`
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
	// Hidden marks an entry a human hid from the draft as noise.
	Hidden bool `json:"hidden,omitempty"`
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

// RelatedIncident is an incident of another key that started close in
// time: possibly the same outage seen from elsewhere.
type RelatedIncident struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Service   string    `json:"service"`
	Status    Status    `json:"status"`
	StartedAt time.Time `json:"started_at"`
	Reason    string    `json:"reason"`
	// SharedChange is the event ID of a deploy both suspect, if any.
	SharedChange string `json:"shared_change,omitempty"`
}

// LifecycleChange records one transition of an incident and why.
type LifecycleChange struct {
	Time   time.Time `json:"time"`
	Status string    `json:"status"` // pending, opened, resolved, reopened, suppressed
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

// Notice is what the correlator publishes on NATS after each commit, for
// every incident the commit changed: the incident lifecycle events that
// live pages, sinks and other processes follow.
type Notice struct {
	Incident string `json:"incident"`
	Key      string `json:"key"`
	// Change is opened, reopened, resolved, updated (anything else:
	// new timeline entries, human edits), merged (Into took it over) or
	// published (a human published its postmortem).
	Change   string `json:"change"`
	Status   Status `json:"status"`
	Title    string `json:"title"`
	Service  string `json:"service"`
	Severity string `json:"severity"`
	Into     string `json:"into,omitempty"`
	// Seq is the stream sequence of the batch that made the change: with
	// Incident and Change it names the notice, so replicas that publish
	// the same one collapse onto one message.
	Seq uint64 `json:"seq"`
	// Mark names the change by what the incident records, independently
	// of how the stream was cut into batches: the anchor it opened with or
	// the time it resolved, with the state the change left it in (status,
	// how many entries, alerts, human acts, reopenings); the human act
	// that published it; the incident it merged into.
	Mark string `json:"mark,omitempty"`
	// At is how far the stream's receipt times had come when the change
	// was made (the correlator's watermark): about now for a live
	// change, long ago for a refold of the history (a rebuild).
	At time.Time `json:"at,omitzero"`
}

// Notice changes.
const (
	NoticeOpened    = "opened"
	NoticeReopened  = "reopened"
	NoticeResolved  = "resolved"
	NoticeUpdated   = "updated"
	NoticeMerged    = "merged"
	NoticePublished = "published"
)
