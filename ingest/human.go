package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// Routes of the human acts on incidents. Each is an event on the stream
// like any other, so a rebuild from the stream keeps every human word.
const (
	RouteDeclare = "POST /api/v1/incidents"
	RouteDraft   = "PUT /api/v1/incidents/{id}/draft"
	RouteHidden  = "PUT /api/v1/incidents/{id}/hidden"
	RouteState   = "PUT /api/v1/incidents/{id}/state"
	RouteEnd     = "POST /api/v1/incidents/{id}/end"
)

// DefaultAwaitFold bounds how long a human act waits for the correlator
// to fold it before answering 202 instead of the result.
const DefaultAwaitFold = 5 * time.Second

// maxFieldBytes bounds one human field of a postmortem.
const maxFieldBytes = 100_000

// EventIncidents finds the incident an event was folded into. The
// declare route uses it to answer with the new incident.
type EventIncidents interface {
	IncidentOfEvent(ctx context.Context, eventID string) (*hindsight.Incident, error)
}

// HumanResult is the answer to a human act once the correlator folded it:
// the incident as it now stands. A 202 carries Pending and no incident:
// the act is on the stream, and the correlator has not folded it yet (or
// runs in another process).
type HumanResult struct {
	Event    string              `json:"event"`
	Pending  bool                `json:"pending,omitempty"`
	Message  string              `json:"message,omitempty"`
	Incident *hindsight.Incident `json:"incident,omitempty"`
}

// ConflictResult is the answer to an edit made on a version of the human
// fields that is no longer current: nothing changed, and the current
// fields are there for the human to merge their words into.
type ConflictResult struct {
	Error      string               `json:"error"`
	Version    int                  `json:"version"`
	Postmortem hindsight.Postmortem `json:"postmortem"`
	Incident   string               `json:"incident"`
}

// draftPayload is the body of PUT …/draft: the version the human edited,
// and the fields they changed. A field left out (or null) keeps its
// current value; an empty one ("", []) clears it.
type draftPayload struct {
	Version     *int                 `json:"version"`
	Summary     *string              `json:"summary"`
	Impact      *string              `json:"impact"`
	RootCause   *string              `json:"root_cause"`
	Resolution  *string              `json:"resolution"`
	ActionItems *[]actionItemPayload `json:"action_items"`
	ImpactStart *string              `json:"impact_start"`
	Author      string               `json:"author"`
}

type actionItemPayload struct {
	Text  string `json:"text"`
	Owner string `json:"owner"`
	Due   string `json:"due"`
	Done  bool   `json:"done"`
}

type hiddenPayload struct {
	Entry  string `json:"entry"`
	Hidden *bool  `json:"hidden"`
	Author string `json:"author"`
}

type statePayload struct {
	State  string `json:"state"`
	Author string `json:"author"`
}

type declarePayload struct {
	Service     string            `json:"service"`
	Title       string            `json:"title"`
	Start       string            `json:"start"`
	Severity    string            `json:"severity"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels"`
	Author      string            `json:"author"`
}

type endPayload struct {
	Time   string `json:"time"`
	Author string `json:"author"`
}

// humanEndpoints registers the routes of human acts.
func (h *Handler) humanEndpoints() {
	ep := func(build func(context.Context, *http.Request, []byte, time.Time) (batch, error), status int) endpoint {
		return endpoint{source: hindsight.SourceHuman, creds: h.opts.Auth.API, status: status, maxBody: h.opts.MaxBodyBytes, build: build}
	}
	if _, ok := h.opts.Incidents.(EventIncidents); ok {
		h.handle(RouteDeclare, ep(h.declare, http.StatusCreated))
	}
	h.handle(RouteDraft, ep(h.editDraft, http.StatusOK))
	h.handle(RouteHidden, ep(h.hide, http.StatusOK))
	h.handle(RouteState, ep(h.setState, http.StatusOK))
	h.handle(RouteEnd, ep(h.end, http.StatusOK))
}

// target looks up the incident of the path and the details every human
// act on it carries.
func (h *Handler) target(ctx context.Context, r *http.Request, author string) (*hindsight.Incident, *hindsight.HumanDetails, error) {
	id := r.PathValue("id")
	inc, err := h.opts.Incidents.Incident(ctx, id)
	if errors.Is(err, hindsight.ErrNotFound) {
		return nil, nil, &requestError{status: http.StatusNotFound, reason: reasonNotFound, msg: fmt.Sprintf("incident %q not found", clip(id))}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up incident %s: %w", clip(id), err)
	}
	if !inc.Status.Opened() {
		return nil, nil, &requestError{status: http.StatusConflict, reason: reasonBadValue,
			msg: fmt.Sprintf("incident %s is %s: it has no postmortem until it opens", inc.ID, inc.Status)}
	}
	author = strings.TrimSpace(author)
	if author == "" {
		author, _, _ = r.BasicAuth()
	}
	return inc, &hindsight.HumanDetails{IncidentID: inc.ID, Key: inc.Key, Anchor: inc.Anchor, Author: oneLine(author)}, nil
}

func humanEvent(kind hindsight.Kind, inc *hindsight.Incident, d *hindsight.HumanDetails, summary string, receivedAt time.Time) hindsight.Event {
	return hindsight.Event{
		ID: hindsight.NewEventID("h"), Kind: kind, Source: hindsight.SourceHuman,
		Time: receivedAt, ReceivedAt: receivedAt, Service: inc.Service, Summary: summary, Human: d,
	}
}

func (h *Handler) editDraft(ctx context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	var p draftPayload
	if err := decodeObject(body, &p, true); err != nil {
		return batch{}, err
	}
	if p.Version == nil {
		return batch{}, badRequest(reasonMissingField, "field \"version\" is missing: send the postmortem.version you edited, so that a concurrent edit is not overwritten")
	}
	if _, err := p.parse(hindsight.PostmortemFields{}, receivedAt); err != nil {
		return batch{}, err // the caller's mistake, whatever the incident
	}
	inc, d, err := h.target(ctx, r, p.Author)
	if err != nil {
		return batch{}, err
	}
	if pm := inc.Postmortem; *p.Version != pm.Version {
		return batch{replyStatus: http.StatusConflict, reply: conflict(inc, *p.Version)}, nil
	}
	// The event carries every field as it now stands, so the fold needs
	// no earlier one, and an edit made on this version applies whole.
	fields, err := p.parse(inc.Postmortem.Fields, receivedAt)
	if err != nil {
		return batch{}, err
	}
	if s := fields.ImpactStart; s != nil && inc.ResolvedAt != nil && s.After(*inc.ResolvedAt) {
		return batch{}, badRequest(reasonBadValue, "field \"impact_start\": %s is after the incident resolved (%s)",
			s.Format(time.RFC3339), inc.ResolvedAt.UTC().Format(time.RFC3339))
	}
	d.BaseVersion, d.Fields = *p.Version, &fields
	ev := humanEvent(hindsight.KindDraftEdited, inc, d, "postmortem edited", receivedAt)
	return batch{events: []hindsight.Event{ev}, await: h.awaitAct(inc.ID, ev.ID)}, nil
}

func conflict(inc *hindsight.Incident, base int) ConflictResult {
	return ConflictResult{
		Error: fmt.Sprintf("the postmortem of incident %s was edited meanwhile: you edited version %d, and version %d is current; nothing was saved: merge your words into the current fields and save again",
			inc.ID, base, inc.Postmortem.Version),
		Version: inc.Postmortem.Version, Postmortem: inc.Postmortem, Incident: inc.ID,
	}
}

// parse checks the fields the payload sets and bounds them, and returns
// cur with them applied.
func (p *draftPayload) parse(cur hindsight.PostmortemFields, receivedAt time.Time) (hindsight.PostmortemFields, error) {
	f := cur
	for _, t := range []struct {
		name string
		in   *string
		out  *string
	}{{"summary", p.Summary, &f.Summary}, {"impact", p.Impact, &f.Impact}, {"root_cause", p.RootCause, &f.RootCause}, {"resolution", p.Resolution, &f.Resolution}} {
		if t.in == nil {
			continue
		}
		v := strings.TrimSpace(*t.in)
		if len(v) > maxFieldBytes {
			return f, badRequest(reasonBadValue, "field %q is %d bytes: at most %d", t.name, len(v), maxFieldBytes)
		}
		*t.out = v
	}
	if p.ActionItems != nil {
		items := *p.ActionItems
		if len(items) > 200 {
			return f, badRequest(reasonBadValue, "field \"action_items\" has %d items: at most 200", len(items))
		}
		f.ActionItems = nil
		for i, a := range items {
			item := hindsight.ActionItem{Text: strings.TrimSpace(a.Text), Owner: strings.TrimSpace(a.Owner), Done: a.Done}
			if item.Text == "" {
				return f, badRequest(reasonMissingField, "action_items[%d]: field \"text\" is missing or blank", i)
			}
			if len(item.Text) > maxNoteBytes || len(item.Owner) > 200 {
				return f, badRequest(reasonBadValue, "action_items[%d]: text or owner too long", i)
			}
			if s := strings.TrimSpace(a.Due); s != "" {
				t, err := parseDay(s)
				if err != nil {
					return f, badRequest(reasonBadValue, "action_items[%d]: field \"due\": %q is neither a date like 2026-12-01 nor an RFC 3339 time", i, clip(s))
				}
				item.Due = &t
			}
			f.ActionItems = append(f.ActionItems, item)
		}
	}
	if p.ImpactStart != nil {
		f.ImpactStart = nil
		if t, set, err := timeField("impact_start", *p.ImpactStart, receivedAt); err != nil {
			return f, err
		} else if set {
			f.ImpactStart = &t
		}
	}
	return f, nil
}

func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC(), err
}

func (h *Handler) hide(ctx context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	var p hiddenPayload
	if err := decodeObject(body, &p, true); err != nil {
		return batch{}, err
	}
	if strings.TrimSpace(p.Entry) == "" || p.Hidden == nil {
		return batch{}, badRequest(reasonMissingField, "fields \"entry\" (a timeline entry's id) and \"hidden\" (true or false) are required")
	}
	inc, d, err := h.target(ctx, r, p.Author)
	if err != nil {
		return batch{}, err
	}
	found := false
	for _, e := range inc.Timeline {
		found = found || e.ID == p.Entry
	}
	if !found {
		return batch{}, &requestError{status: http.StatusNotFound, reason: reasonNotFound,
			msg: fmt.Sprintf("incident %s has no timeline entry %q", inc.ID, clip(p.Entry))}
	}
	kind, summary := hindsight.KindEntryShown, "timeline entry shown in the draft"
	if *p.Hidden {
		kind, summary = hindsight.KindEntryHidden, "timeline entry hidden from the draft"
	}
	d.Entry = p.Entry
	ev := humanEvent(kind, inc, d, summary, receivedAt)
	return batch{events: []hindsight.Event{ev}, await: h.awaitAct(inc.ID, ev.ID)}, nil
}

func (h *Handler) setState(ctx context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	var p statePayload
	if err := decodeObject(body, &p, true); err != nil {
		return batch{}, err
	}
	state := hindsight.DraftState(strings.TrimSpace(p.State))
	if !state.Valid() {
		return batch{}, badRequest(reasonBadValue, "field \"state\": %q is not one of \"draft\", \"in review\", \"published\"", clip(p.State))
	}
	inc, d, err := h.target(ctx, r, p.Author)
	if err != nil {
		return batch{}, err
	}
	if state == hindsight.DraftStatePublished && inc.Status != hindsight.StatusResolved {
		return batch{}, &requestError{status: http.StatusConflict, reason: reasonBadValue,
			msg: fmt.Sprintf("incident %s is still %s: publish its postmortem once it has resolved", inc.ID, inc.Status)}
	}
	d.State = state
	ev := humanEvent(hindsight.KindDraftState, inc, d, "postmortem marked "+string(state), receivedAt)
	return batch{events: []hindsight.Event{ev}, await: h.awaitAct(inc.ID, ev.ID)}, nil
}

// declare opens an incident by hand: an event that the fold treats as an
// alert firing from the start the human gave, on the key its labels give.
func (h *Handler) declare(ctx context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	var p declarePayload
	if err := decodeObject(body, &p, true); err != nil {
		return batch{}, err
	}
	service, title := strings.TrimSpace(p.Service), oneLine(p.Title)
	if service == "" || title == "" {
		return batch{}, badRequest(reasonMissingField, "fields \"service\" and \"title\" are required")
	}
	if len(title) > 500 || len(service) > 200 || len(p.Description) > maxNoteBytes || len(p.Labels) > 50 {
		return batch{}, badRequest(reasonBadValue, "title (500 bytes), service (200), description (%d) or labels (50) too long", maxNoteBytes)
	}
	start := receivedAt
	if t, set, err := timeField("start", p.Start, receivedAt); err != nil {
		return batch{}, err
	} else if set {
		start = t
	}
	labels := map[string]string{}
	for k, v := range p.Labels {
		if k = strings.TrimSpace(k); k != "" {
			labels[k] = oneLine(v)
		}
	}
	labels["alertname"], labels["service"] = "Declared", service
	if sev := strings.TrimSpace(p.Severity); sev != "" {
		labels["severity"] = oneLine(sev)
	}
	author := strings.TrimSpace(p.Author)
	if author == "" {
		author, _, _ = r.BasicAuth()
	}
	id := hindsight.NewEventID("d")
	ann := map[string]string{"summary": title}
	if d := strings.TrimSpace(p.Description); d != "" {
		ann["description"] = d
	}
	if author != "" {
		ann["declared_by"] = oneLine(author)
	}
	summary := title
	if author != "" {
		summary += " (declared by " + oneLine(author) + ")"
	}
	ev := hindsight.Event{
		ID: id, Kind: hindsight.KindDeclared, Source: hindsight.SourceHuman,
		Time: start, ReceivedAt: receivedAt, Service: service, Labels: labels, Summary: summary,
		Alert: &hindsight.AlertDetails{Name: title, Fingerprint: hindsight.DeclaredFingerprint(id), StartsAt: start, Annotations: ann},
	}
	await := func(ctx context.Context) (int, any) {
		ei := h.opts.Incidents.(EventIncidents)
		inc := h.poll(ctx, func(ctx context.Context) *hindsight.Incident {
			inc, err := ei.IncidentOfEvent(ctx, id)
			if err != nil {
				return nil
			}
			return inc
		})
		if inc == nil {
			return http.StatusAccepted, pending(id)
		}
		return http.StatusCreated, HumanResult{Event: id, Incident: inc}
	}
	return batch{events: []hindsight.Event{ev}, await: await}, nil
}

// end closes an incident declared by hand: it ends every declared
// occurrence still open, as a resolved notification ends an alert.
func (h *Handler) end(ctx context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	var p endPayload
	if err := decodeObject(body, &p, false); err != nil {
		return batch{}, err
	}
	at := receivedAt
	if t, set, err := timeField("time", p.Time, receivedAt); err != nil {
		return batch{}, err
	} else if set {
		at = t
	}
	inc, d, err := h.target(ctx, r, p.Author)
	if err != nil {
		return batch{}, err
	}
	var events []hindsight.Event
	for _, a := range inc.Alerts {
		if !hindsight.IsDeclared(a.Fingerprint) || a.EndsAt != nil {
			continue
		}
		if at.Before(a.StartsAt) {
			return batch{}, badRequest(reasonBadValue, "field \"time\": %s is before the incident was declared to start (%s)",
				at.Format(time.RFC3339), a.StartsAt.UTC().Format(time.RFC3339))
		}
		summary := a.Summary + " (ended"
		if d.Author != "" {
			summary += " by " + d.Author
		}
		events = append(events, hindsight.Event{
			ID: hindsight.AlertEventID(a.Fingerprint, a.StartsAt, "resolved"), Kind: hindsight.KindDeclaredEnded, Source: hindsight.SourceHuman,
			Time: at, ReceivedAt: receivedAt, Service: inc.Service, Labels: a.Labels, Summary: summary + ")",
			Alert: &hindsight.AlertDetails{Name: a.Name, Fingerprint: a.Fingerprint, StartsAt: a.StartsAt, EndsAt: at},
		})
	}
	if len(events) == 0 {
		return batch{}, &requestError{status: http.StatusConflict, reason: reasonBadValue,
			msg: fmt.Sprintf("incident %s has no declared part still going on: incidents opened by alerts resolve when their alerts do", inc.ID)}
	}
	last := events[len(events)-1].ID
	await := func(ctx context.Context) (int, any) {
		got := h.poll(ctx, func(ctx context.Context) *hindsight.Incident {
			cur, err := h.opts.Incidents.Incident(ctx, inc.ID)
			if err != nil {
				return nil
			}
			for _, e := range cur.Timeline {
				if e.ID == last {
					return cur
				}
			}
			return nil
		})
		if got == nil {
			return http.StatusAccepted, pending(last)
		}
		return http.StatusOK, HumanResult{Event: last, Incident: got}
	}
	return batch{events: events, await: await}, nil
}

// awaitAct waits for the correlator to record the act (event id) on the
// incident, and answers with the incident, or 409 when the fold refused
// an edit that lost a race with another.
func (h *Handler) awaitAct(incident, id string) func(context.Context) (int, any) {
	return func(ctx context.Context) (int, any) {
		var rec hindsight.HumanEdit
		inc := h.poll(ctx, func(ctx context.Context) *hindsight.Incident {
			cur, err := h.opts.Incidents.Incident(ctx, incident)
			if err != nil {
				return nil
			}
			r, ok := cur.Postmortem.Edit(id)
			if !ok {
				return nil
			}
			rec = r
			return cur
		})
		switch {
		case inc == nil:
			return http.StatusAccepted, pending(id)
		case rec.Conflict:
			c := conflict(inc, inc.Postmortem.Version)
			c.Error = fmt.Sprintf("the postmortem of incident %s was edited meanwhile (%s); nothing was saved: merge your words into the current fields and save again", inc.ID, rec.Reason)
			return http.StatusConflict, c
		}
		return http.StatusOK, HumanResult{Event: id, Incident: inc}
	}
}

func pending(id string) HumanResult {
	return HumanResult{Event: id, Pending: true,
		Message: "recorded on the stream; the correlator has not folded it yet: reload in a moment"}
}

// poll calls get until it returns an incident or AwaitFold has passed.
func (h *Handler) poll(ctx context.Context, get func(context.Context) *hindsight.Incident) *hindsight.Incident {
	if h.opts.AwaitFold <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.AwaitFold)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if inc := get(ctx); inc != nil {
			return inc
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
