package hindsight

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Source names where an event came from.
type Source string

const (
	SourceAlertmanager Source = "alertmanager"
	SourceDeploy       Source = "deploy"
	SourceNote         Source = "note"
	SourceHuman        Source = "human"
	// SourceClock marks the ticks Hindsight writes into the stream so that
	// event time moves on while nothing else happens.
	SourceClock Source = "clock"
)

// Kind says what an event records.
type Kind string

const (
	KindAlertFiring      Kind = "alert.firing"
	KindAlertResolved    Kind = "alert.resolved"
	KindDeployStarted    Kind = "deploy.started"
	KindDeploySucceeded  Kind = "deploy.succeeded"
	KindDeployFailed     Kind = "deploy.failed"
	KindDeployRolledBack Kind = "deploy.rolled_back"
	KindNote             Kind = "note"
	// KindTick is a clock tick: its time tells the fold how far event time
	// has come (open_after's for), and nothing else.
	KindTick Kind = "clock.tick"

	// KindDeclared is an incident declared by hand, for an outage no alert
	// caught. It carries an AlertDetails of its own (fingerprint
	// "declared:<event ID>") and is folded like an alert that fires from
	// the start the human gave, so alerts that arrive later for its key
	// and time join it. KindDeclaredEnded ends it, as a resolved
	// notification ends an alert.
	KindDeclared      Kind = "incident.declared"
	KindDeclaredEnded Kind = "incident.ended"

	// Human acts on an incident's postmortem (HumanDetails).
	KindDraftEdited Kind = "draft.edited"
	KindEntryHidden Kind = "timeline.hidden"
	KindEntryShown  Kind = "timeline.shown"
	KindDraftState  Kind = "draft.state"
)

// IsAlert reports whether k is an alert event, or an incident declared or
// ended by hand, which the fold treats as one.
func (k Kind) IsAlert() bool {
	return k == KindAlertFiring || k == KindAlertResolved || k == KindDeclared || k == KindDeclaredEnded
}

// Fires reports whether k starts an alert occurrence (an alert firing, an
// incident declared); Ends whether it ends one.
func (k Kind) Fires() bool { return k == KindAlertFiring || k == KindDeclared }
func (k Kind) Ends() bool  { return k == KindAlertResolved || k == KindDeclaredEnded }

// IsHuman reports whether k is a human act on a postmortem.
func (k Kind) IsHuman() bool {
	return k == KindDraftEdited || k == KindEntryHidden || k == KindEntryShown || k == KindDraftState
}

// IsDeploy reports whether k is a deploy event.
func (k Kind) IsDeploy() bool { return strings.HasPrefix(string(k), "deploy.") }

// DeployStatuses lists the statuses a deploy event may carry, in the order
// a pipeline goes through them.
var DeployStatuses = []string{"started", "succeeded", "failed", "rolled_back"}

// DeployKind returns the event kind for a deploy status, and false when the
// status is not one of DeployStatuses.
func DeployKind(status string) (Kind, bool) {
	for _, s := range DeployStatuses {
		if s == status {
			return Kind("deploy." + s), true
		}
	}
	return "", false
}

// Event is one immutable fact. Its ID is stable for the fact: every
// redelivery or repeat of the same fact carries the same ID.
type Event struct {
	ID     string    `json:"id"`
	Kind   Kind      `json:"kind"`
	Source Source    `json:"source"`
	Time   time.Time `json:"time"` // when it happened: its place on the timeline
	// ReceivedAt is when Hindsight first got it. It is stamped at ingest so
	// that the fold never reads a clock.
	ReceivedAt time.Time         `json:"received_at"`
	Service    string            `json:"service,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Summary    string            `json:"summary"`

	Alert  *AlertDetails  `json:"alert,omitempty"`
	Deploy *DeployDetails `json:"deploy,omitempty"`
	Note   *NoteDetails   `json:"note,omitempty"`
	Human  *HumanDetails  `json:"human,omitempty"`
}

// AlertDetails is what an alert event keeps of Alertmanager's notification.
type AlertDetails struct {
	Name         string            `json:"name"`
	Fingerprint  string            `json:"fingerprint"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"ends_at,omitzero"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	GeneratorURL string            `json:"generator_url,omitempty"`
	GroupKey     string            `json:"group_key,omitempty"`
	Receiver     string            `json:"receiver,omitempty"`
	ExternalURL  string            `json:"external_url,omitempty"`
}

// OccurrenceID names one occurrence of an alert: a series (fingerprint)
// that started firing at startsAt. A flapping alert has one occurrence per
// start.
func (a *AlertDetails) OccurrenceID() string {
	return a.Fingerprint + "@" + a.StartsAt.UTC().Format(time.RFC3339Nano)
}

// DeployDetails is what a deploy event carries.
type DeployDetails struct {
	ID          string `json:"id,omitempty"`
	Environment string `json:"environment,omitempty"`
	Version     string `json:"version,omitempty"`
	Status      string `json:"status"`
	Actor       string `json:"actor,omitempty"`
	Commit      string `json:"commit,omitempty"`
	URL         string `json:"url,omitempty"`
	Description string `json:"description,omitempty"`
}

// NoteDetails is a human note on an incident's timeline.
type NoteDetails struct {
	// IncidentID is the incident the human wrote on, as they saw it.
	IncidentID string `json:"incident_id"`
	// Key is that incident's correlation key and Anchor the alert
	// occurrence its ID derives from, so the note follows the incident
	// through merges and replays.
	Key    string `json:"key"`
	Anchor string `json:"anchor"`
	Text   string `json:"text"`
	Author string `json:"author,omitempty"`
}

// AlertEventID derives the ID of an alert event from the occurrence and
// its status ("firing" or "resolved"), as DESIGN.md fixes it.
func AlertEventID(fingerprint string, startsAt time.Time, status string) string {
	return hashID("alert", fingerprint, startsAt.UTC().Format(time.RFC3339Nano), status)
}

// DeployEventID derives the ID of a deploy event: from the pipeline's own
// deploy ID and status when it gives one (with service and environment,
// since one pipeline run may deploy several), else from service, version,
// status and time.
func DeployEventID(d DeployDetails, service string, t time.Time) string {
	if d.ID != "" {
		return hashID("deploy", d.ID, service, d.Environment, d.Status)
	}
	return hashID("deploy", service, d.Environment, d.Version, d.Status, t.UTC().Format(time.RFC3339Nano))
}

// TickEventID is the ID of the tick at t, a whole second: ticks of one
// second from several processes collapse into one.
func TickEventID(t time.Time) string {
	return "t-" + t.UTC().Truncate(time.Second).Format("20060102T150405Z")
}

// NewEventID returns a new random ID, for events that have no natural
// identity (notes, human actions).
func NewEventID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + "-" + hex.EncodeToString(b[:])
}

func hashID(kind string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return kind[:1] + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Validate reports what makes an event impossible to fold. Ingest only
// publishes valid events; this guards against anything else that can
// write to the stream.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return errors.New("event has no id")
	case e.Time.IsZero():
		return fmt.Errorf("event %s has no time", e.ID)
	case e.Kind.IsAlert():
		if e.Alert == nil || e.Alert.Fingerprint == "" || e.Alert.StartsAt.IsZero() {
			return fmt.Errorf("alert event %s lacks its alert details (fingerprint, startsAt)", e.ID)
		}
		if e.Kind.Ends() && e.Alert.EndsAt.IsZero() {
			return fmt.Errorf("resolved alert event %s has no endsAt", e.ID)
		}
	case e.Kind.IsDeploy():
		if e.Deploy == nil || e.Service == "" {
			return fmt.Errorf("deploy event %s lacks its deploy details or service", e.ID)
		}
		if k, ok := DeployKind(e.Deploy.Status); !ok || k != e.Kind {
			return fmt.Errorf("deploy event %s: kind %s does not match status %q", e.ID, e.Kind, e.Deploy.Status)
		}
	case e.Kind == KindTick:
	case e.Kind == KindNote:
		if e.Note == nil || e.Note.Key == "" || e.Note.Anchor == "" {
			return fmt.Errorf("note %s lacks the incident it belongs to", e.ID)
		}
	case e.Kind.IsHuman():
		h := e.Human
		switch {
		case h == nil || h.Key == "" || h.Anchor == "":
			return fmt.Errorf("%s event %s lacks the incident it belongs to", e.Kind, e.ID)
		case e.Kind == KindDraftEdited && h.Fields == nil:
			return fmt.Errorf("draft edit %s carries no fields", e.ID)
		case (e.Kind == KindEntryHidden || e.Kind == KindEntryShown) && h.Entry == "":
			return fmt.Errorf("%s event %s names no timeline entry", e.Kind, e.ID)
		case e.Kind == KindDraftState && !h.State.Valid():
			return fmt.Errorf("draft state event %s has unknown state %q", e.ID, h.State)
		}
	default:
		return fmt.Errorf("event %s has unknown kind %q", e.ID, e.Kind)
	}
	return nil
}
