package hindsight

import "time"

// HumanDetails is a human's act on an incident's postmortem: an edit of
// the human fields, hiding or showing a timeline entry, a change of the
// draft's state. Like a note, it names the incident by its key and anchor
// as well as its ID, so that it follows the incident through merges and
// replays.
type HumanDetails struct {
	IncidentID string `json:"incident_id"`
	Key        string `json:"key"`
	Anchor     string `json:"anchor"`
	Author     string `json:"author,omitempty"`

	// BaseVersion is the version of the human fields the edit was made
	// on, and Fields the fields as the human left them (draft.edited).
	// An edit of a version that is no longer current is a conflict: it
	// is kept on the stream and recorded, and changes nothing.
	BaseVersion int               `json:"base_version,omitempty"`
	Fields      *PostmortemFields `json:"fields,omitempty"`
	// Entry is the timeline entry hidden or shown (timeline.hidden,
	// timeline.shown).
	Entry string `json:"entry,omitempty"`
	// State is the draft's new state (draft.state).
	State DraftState `json:"state,omitempty"`
}

// DraftState is where a postmortem stands.
type DraftState string

const (
	DraftStateDraft     DraftState = "draft"
	DraftStateReview    DraftState = "in review"
	DraftStatePublished DraftState = "published"
)

// Valid reports whether s is one of the draft states.
func (s DraftState) Valid() bool {
	return s == DraftStateDraft || s == DraftStateReview || s == DraftStatePublished
}

// Postmortem is the human side of an incident's postmortem, folded from
// the human events on the stream: a rebuild keeps every human word.
type Postmortem struct {
	// Version counts the edits applied to Fields; an edit must name the
	// version it was made on.
	Version int              `json:"version"`
	Fields  PostmortemFields `json:"fields"`
	State   DraftState       `json:"state"`
	// PublishedAt is when the draft was last published.
	PublishedAt *time.Time `json:"published_at,omitempty"`
	// Hidden are the timeline entries a human hid from the draft (noise);
	// they stay on the timeline.
	Hidden []string `json:"hidden"`
	// Edits records every human act, applied or refused, in order.
	Edits []HumanEdit `json:"edits"`
}

// HumanEdit records one human act on the postmortem.
type HumanEdit struct {
	EventID string    `json:"event_id"`
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
	Author  string    `json:"author,omitempty"`
	// Version is the fields' version after the act.
	Version int `json:"version"`
	// Conflict is set when an edit was refused because it was made on a
	// version that was no longer current; Reason says so.
	Conflict bool   `json:"conflict,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// IsHidden reports whether the timeline entry id is hidden from the draft.
func (p *Postmortem) IsHidden(id string) bool {
	for _, h := range p.Hidden {
		if h == id {
			return true
		}
	}
	return false
}

// ImpactStart is when impact began: the human's correction, or start.
func (p *Postmortem) ImpactStart(start time.Time) time.Time {
	if t := p.Fields.ImpactStart; t != nil && !t.IsZero() {
		return t.UTC()
	}
	return start
}

// Edit records the outcome of one event on the postmortem, by its event ID.
func (p *Postmortem) Edit(eventID string) (HumanEdit, bool) {
	for _, e := range p.Edits {
		if e.EventID == eventID {
			return e, true
		}
	}
	return HumanEdit{}, false
}

// DeclaredFingerprint is the fingerprint of the occurrence an incident
// declared by hand (event ID id) stands for.
func DeclaredFingerprint(id string) string { return "declared:" + id }

// IsDeclared reports whether an alert fingerprint stands for an incident
// declared by hand.
func IsDeclared(fingerprint string) bool {
	return len(fingerprint) > 9 && fingerprint[:9] == "declared:"
}
