package natsbus

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/internal/jsonwire"
)

// A request's events travel in as few messages as fit (an envelope of
// events), not one message per event: with the durable default the
// server fsyncs each message before it acknowledges it (about 0.3 ms
// here), so a message per alert caps ingest near 3,500 alerts a second,
// and an envelope per notification of 10 alerts lifts that tenfold.
// JetStream's duplicate window then works per envelope (an identical
// repeat of a notification collapses onto it); per event, the correlator
// collapses copies by event ID, as it always did for repeats older than
// the window, so nothing is ever duplicated on a timeline.
//
// A lone event is still its own message with Nats-Msg-Id = its ID.

// HeaderEvents marks an envelope and says how many events it holds.
const HeaderEvents = "Hindsight-Events"

// maxEnvelopeBytes bounds one envelope, well under NATS's default
// max_payload of 1 MiB; a larger request (Alertmanager may send 30,000
// alerts at once) is split, and each part acknowledged.
const maxEnvelopeBytes = 256 << 10

// outgoing is a message to publish and the events it carries.
type outgoing struct {
	msg *nats.Msg
	id  string // Nats-Msg-Id
	n   int    // events in it
}

// pack encodes events into messages: one per event when there is one,
// else envelopes of at most limit bytes (an event larger than limit goes
// alone). subject names each message by its first event's source.
func pack(events []hindsight.Event, limit int) ([]outgoing, error) {
	raw := make([]json.RawMessage, len(events))
	for i := range events {
		data, err := jsonwire.Marshal(&events[i])
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", events[i].ID, err)
		}
		raw[i] = data
	}
	if len(events) == 1 {
		return []outgoing{{msg: &nats.Msg{Subject: SubjectPrefix + string(events[0].Source), Data: raw[0]}, id: events[0].ID, n: 1}}, nil
	}
	var out []outgoing
	for start := 0; start < len(events); {
		end, size := start, 0
		for end < len(events) && (end == start || size+len(raw[end])+1 <= limit) {
			size += len(raw[end]) + 1
			end++
		}
		// The events are json.Marshal's own output: joined as they are,
		// not passed through Marshal again, which would check and
		// compact every byte a second time.
		data := make([]byte, 0, size+len(`{"events":[]}`))
		data = append(data, `{"events":[`...)
		for i, r := range raw[start:end] {
			if i > 0 {
				data = append(data, ',')
			}
			data = append(data, r...)
		}
		data = append(data, "]}"...)
		h := sha256.New()
		for _, e := range events[start:end] {
			h.Write([]byte(e.ID))
			h.Write([]byte{'\n'})
		}
		m := &nats.Msg{Subject: SubjectPrefix + string(events[start].Source), Data: data, Header: nats.Header{}}
		m.Header.Set(HeaderEvents, strconv.Itoa(end-start))
		// The same events in the same order (an identical repeat of a
		// notification) make the same message ID.
		out = append(out, outgoing{msg: m, id: "env-" + hex.EncodeToString(h.Sum(nil)[:16]), n: end - start})
		start = end
	}
	return out, nil
}

// unpack decodes a message of the events stream into its events: an
// envelope's, or the one event it holds.
func unpack(data []byte, header nats.Header) ([]hindsight.Event, error) {
	if header.Get(HeaderEvents) == "" {
		var e hindsight.Event
		if err := jsonwire.Unmarshal(data, &e); err != nil {
			return nil, err
		}
		if e.ID == "" {
			return nil, errors.New("event has no id")
		}
		return []hindsight.Event{e}, nil
	}
	var env struct {
		Events []hindsight.Event `json:"events"`
	}
	if err := jsonwire.Unmarshal(data, &env); err != nil {
		return nil, err
	}
	if len(env.Events) == 0 {
		return nil, errors.New("envelope holds no events")
	}
	for i := range env.Events {
		if env.Events[i].ID == "" {
			return nil, fmt.Errorf("event %d of the envelope has no id", i)
		}
	}
	return env.Events, nil
}
