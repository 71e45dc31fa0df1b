package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/hindsight-sre/hindsight"
)

// alertmanagerVersion is the only webhook payload version Alertmanager has
// ever sent (0.x up to today); a new one would change the payload's shape.
const alertmanagerVersion = "4"

// amPayload is Alertmanager's webhook body. It embeds template.Data rather
// than importing notify/webhook, which would link most of Alertmanager.
type amPayload struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts int    `json:"truncatedAlerts"`
	// alertErrs[i] says why alert i could not be decoded; such an alert
	// is rejected alone, so its neighbours are still recorded.
	alertErrs []error
}

// amEnvelope decodes the alerts one by one: its Alerts, shallower than
// template.Data's, takes the "alerts" key.
type amEnvelope struct {
	amPayload
	Alerts []json.RawMessage `json:"alerts"`
}

// Rejection reports one alert of a notification that was not turned into
// an event, by its index in the notification's alerts.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// parseAlertmanager turns a webhook body into one event per usable alert.
// Unusable alerts are returned as rejections; the error is a
// *requestError when the notification as a whole cannot be used (bad JSON,
// wrong version, no usable alert).
func parseAlertmanager(body []byte, receivedAt time.Time) ([]hindsight.Event, []Rejection, error) {
	p, err := decodeAlertmanager(body)
	if err != nil {
		return nil, nil, err
	}
	return alertEvents(p, receivedAt)
}

func decodeAlertmanager(body []byte) (amPayload, error) {
	// Nearly every notification decodes whole, in one pass; only one
	// that does not is decoded again alert by alert, to keep the good
	// alerts and say what is wrong with the others.
	var p amPayload
	if decodeObject(body, &p, false) == nil {
		p.alertErrs = make([]error, len(p.Alerts))
	} else {
		var env amEnvelope
		if err := decodeObject(body, &env, false); err != nil {
			return env.amPayload, err
		}
		p = env.amPayload
		p.Alerts = make(template.Alerts, len(env.Alerts))
		p.alertErrs = make([]error, len(env.Alerts))
		for i, raw := range env.Alerts {
			if err := json.Unmarshal(raw, &p.Alerts[i]); err != nil {
				p.alertErrs[i] = alertDecodeError(raw, err)
			}
		}
	}
	switch p.Version {
	case alertmanagerVersion:
	case "":
		return p, badRequest(reasonMissingField, "field \"version\" is missing: want %q (Alertmanager webhook payload)", alertmanagerVersion)
	default:
		return p, badRequest(reasonBadValue, "payload version %q is not supported: want %q", p.Version, alertmanagerVersion)
	}
	return p, nil
}

// alertDecodeError says what is wrong with an alert that did not decode.
// encoding/json returns time.Time's own error without saying where it
// was, so the timestamps are looked at one by one.
func alertDecodeError(raw json.RawMessage, err error) error {
	var a struct {
		StartsAt json.RawMessage `json:"startsAt"`
		EndsAt   json.RawMessage `json:"endsAt"`
	}
	if json.Unmarshal(raw, &a) == nil {
		for _, f := range []struct {
			name string
			raw  json.RawMessage
		}{{"startsAt", a.StartsAt}, {"endsAt", a.EndsAt}} {
			var t time.Time
			if f.raw != nil && json.Unmarshal(f.raw, &t) != nil {
				return fmt.Errorf("%s: %s is not an RFC 3339 time", f.name, clip(string(f.raw)))
			}
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: %s is not a %s", te.Field, te.Value, te.Type)
	}
	return fmt.Errorf("cannot decode alert: %v", err)
}

// alertEvents turns each alert of p into one event, or a rejection.
func alertEvents(p amPayload, receivedAt time.Time) ([]hindsight.Event, []Rejection, error) {
	if len(p.Alerts) == 0 {
		return nil, nil, badRequest(reasonMissingField, "field \"alerts\" is missing or empty: nothing to record")
	}
	var (
		events   []hindsight.Event
		rejected []Rejection
	)
	for i, a := range p.Alerts {
		if i < len(p.alertErrs) && p.alertErrs[i] != nil {
			rejected = append(rejected, Rejection{Index: i, Error: p.alertErrs[i].Error()})
			continue
		}
		ev, err := alertEvent(p, a, receivedAt)
		if err != nil {
			rejected = append(rejected, Rejection{Index: i, Error: err.Error()})
			continue
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		return nil, rejected, &requestError{
			status:   http.StatusBadRequest,
			reason:   reasonUnusableAlert,
			msg:      "no usable alert: " + joinRejections(rejected),
			rejected: rejected,
		}
	}
	return events, rejected, nil
}

// alertEvent turns one alert into an event. The event's time is startsAt
// for a firing alert and endsAt for a resolved one; its ID depends only on
// the occurrence (fingerprint, startsAt) and status, so Alertmanager's
// repeats of a group collapse onto the IDs already published.
func alertEvent(p amPayload, a template.Alert, receivedAt time.Time) (hindsight.Event, error) {
	if len(a.Labels) == 0 {
		return hindsight.Event{}, errors.New("alert has no labels")
	}
	if a.StartsAt.IsZero() {
		return hindsight.Event{}, errors.New("startsAt is missing")
	}
	if err := checkTime("startsAt", a.StartsAt, receivedAt); err != nil {
		return hindsight.Event{}, err
	}
	details := &hindsight.AlertDetails{
		Name:         a.Labels[model.AlertNameLabel],
		Fingerprint:  fingerprint(a),
		StartsAt:     a.StartsAt.UTC(),
		Annotations:  copyMap(a.Annotations),
		GeneratorURL: a.GeneratorURL,
		GroupKey:     p.GroupKey,
		Receiver:     p.Receiver,
		ExternalURL:  p.ExternalURL,
	}
	ev := hindsight.Event{
		Source:     hindsight.SourceAlertmanager,
		ReceivedAt: receivedAt,
		Service:    firstNonEmpty(a.Labels["service"], a.Labels["job"]),
		Labels:     copyMap(a.Labels),
		Summary:    oneLine(firstNonEmpty(a.Annotations["summary"], a.Annotations["description"], details.Name, "alert "+details.Fingerprint)),
		Alert:      details,
	}
	switch a.Status {
	case string(model.AlertFiring):
		ev.Kind = hindsight.KindAlertFiring
		ev.Time = details.StartsAt
	case string(model.AlertResolved):
		if a.EndsAt.IsZero() {
			return hindsight.Event{}, errors.New("resolved alert has no endsAt")
		}
		if a.EndsAt.Before(a.StartsAt) {
			return hindsight.Event{}, fmt.Errorf("endsAt %s is before startsAt %s", a.EndsAt.UTC().Format(time.RFC3339Nano), details.StartsAt.Format(time.RFC3339Nano))
		}
		if err := checkTime("endsAt", a.EndsAt, receivedAt); err != nil {
			return hindsight.Event{}, err
		}
		details.EndsAt = a.EndsAt.UTC()
		ev.Kind = hindsight.KindAlertResolved
		ev.Time = details.EndsAt
	default:
		return hindsight.Event{}, fmt.Errorf("status %q: want %q or %q", clip(a.Status), model.AlertFiring, model.AlertResolved)
	}
	ev.ID = hindsight.AlertEventID(details.Fingerprint, details.StartsAt, a.Status)
	return ev, nil
}

// fingerprint returns the alert's fingerprint, computing it the way
// Alertmanager does (a hash of the label set) when the sender left it out,
// so that a hand-written payload still deduplicates against real ones.
func fingerprint(a template.Alert) string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	ls := make(model.LabelSet, len(a.Labels))
	for k, v := range a.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// joinRejections summarises rejections for an error message; the full
// list travels in the response's "rejected" field.
func joinRejections(rs []Rejection) string {
	const shown = 5
	var parts []string
	for i, r := range rs {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-shown))
			break
		}
		parts = append(parts, fmt.Sprintf("alerts[%d]: %s", r.Index, r.Error))
	}
	return strings.Join(parts, "; ")
}
