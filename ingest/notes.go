package ingest

import (
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// maxNoteBytes bounds a note's text: a note is a line on a timeline, not
// a document.
const maxNoteBytes = 10_000

// notePayload is the body of POST /api/v1/incidents/{id}/notes.
type notePayload struct {
	Text   string `json:"text"`
	Time   string `json:"time"`
	Author string `json:"author"`
}

// note is a validated note, waiting for its incident.
type note struct {
	text   string
	time   time.Time
	author string
}

// parseNote validates a note body. Errors are *requestError.
func parseNote(body []byte, receivedAt time.Time) (note, error) {
	var p notePayload
	if err := decodeObject(body, &p, true); err != nil {
		return note{}, err
	}
	n := note{
		text:   strings.TrimSpace(p.Text),
		time:   receivedAt,
		author: strings.TrimSpace(p.Author),
	}
	if n.text == "" {
		return note{}, badRequest(reasonMissingField, "field \"text\" is missing or blank")
	}
	if len(n.text) > maxNoteBytes {
		return note{}, badRequest(reasonBadValue, "field \"text\" is %d bytes: at most %d", len(n.text), maxNoteBytes)
	}
	if t, set, err := timeField("time", p.Time, receivedAt); err != nil {
		return note{}, err
	} else if set {
		n.time = t
	}
	return n, nil
}

// noteEvent places n on inc's timeline. The note records the incident's
// key and anchor as well as its ID, so that it follows the incident
// through merges and replays. A note has no natural identity: each
// request makes a new event.
func noteEvent(n note, inc *hindsight.Incident, receivedAt time.Time) hindsight.Event {
	return hindsight.Event{
		ID:         hindsight.NewEventID("n"),
		Kind:       hindsight.KindNote,
		Source:     hindsight.SourceNote,
		Time:       n.time,
		ReceivedAt: receivedAt,
		Service:    inc.Service,
		Summary:    oneLine(n.text),
		Note: &hindsight.NoteDetails{
			IncidentID: inc.ID,
			Key:        inc.Key,
			Anchor:     inc.Anchor,
			Text:       n.text,
			Author:     n.author,
		},
	}
}
