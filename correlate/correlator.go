package correlate

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
)

// Store keeps events and the incidents folded from them. There is one
// writer, the Correlator, so reads between its commits see its last
// commit.
type Store interface {
	// Known returns, of ids, those the store already has, with the time
	// and receipt of the copy it keeps.
	Known(ids []string) (map[string]Stored, error)
	// KeySpans returns the spans of a key's incidents that meet
	// [from, to], in order of start.
	KeySpans(key string, from, to time.Time) ([]Span, error)
	// KeyEvents returns a key's alert events whose time lies in
	// [from, to], and every note of the key.
	KeyEvents(key string, from, to time.Time) ([]hindsight.Event, error)
	// Watermark returns the Change.Watermark last committed.
	Watermark() (time.Time, error)
	// PendingDue returns the pending incidents (those with an OpensAt)
	// whose OpensAt is at or before t.
	PendingDue(t time.Time) ([]Span, error)
	// Commit applies a change in one transaction.
	Commit(Change) error
}

// Change is what one batch of events does to the store.
type Change struct {
	// Events are new alert and note events with their key; an ignored
	// alert has the key "" and is kept only so it is known.
	Events []KeyedEvent
	// Deploys are new deploy events, kept by time for Enrich.
	Deploys []KeyedEvent
	Keys    []KeyChange
	// Watermark is how far event time has come: the latest receipt (or
	// tick) of any event so far. It never moves back.
	Watermark time.Time
	// Seq is the stream sequence of the batch's last event.
	Seq uint64
}

// KeyedEvent is an event with its correlation key. Replaces is set when
// the event is an earlier copy of one the store keeps, which it replaces.
type KeyedEvent struct {
	Key      string
	Event    hindsight.Event
	Replaces *Stored
}

// Stored is what the store knows of an event it keeps.
type Stored struct {
	Key        string
	Time       time.Time
	ReceivedAt time.Time
}

// Span is the event-time extent of a stored incident: from its start to
// its resolution, or to FarFuture while any of its alerts fires. The
// incidents of one key never overlap, and only the last can be open.
type Span struct {
	ID         string
	Key        string
	Start, End time.Time
	// Status and Anchor are the incident's, so that a refold need not
	// decode the incidents it replaces.
	Status hindsight.Status
	Anchor string
}

// SpanOf returns an incident's span.
func SpanOf(inc *hindsight.Incident) Span {
	sp := Span{ID: inc.ID, Key: inc.Key, Start: inc.StartedAt, End: FarFuture, Status: inc.Status, Anchor: inc.Anchor}
	if inc.ResolvedAt != nil && (inc.Status == hindsight.StatusResolved || inc.Status == hindsight.StatusSuppressed) {
		sp.End = *inc.ResolvedAt
	}
	return sp
}

// KeyChange replaces a region of one key's incidents: the incidents in
// Replaced go, and Incidents take their place.
type KeyChange struct {
	Key       string
	Incidents []hindsight.Incident
	// Replaced are the IDs of the incidents the region held before.
	Replaced []string
	// Removed are IDs of the key's incidents that no longer exist; each
	// has an entry in Redirects saying which incident took it over.
	Removed   []string
	Redirects map[string]string
	// Notices say what the change did to each incident, for the
	// lifecycle events published after the commit. The store ignores
	// them.
	Notices []hindsight.Notice
}

// UnkeyedKey groups the alerts that have no key label and no
// Alertmanager group key: kept, and shown, rather than dropped.
const UnkeyedKey = "unkeyed"

// Correlator folds batches of events into the store.
type Correlator struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	metrics *metrics
	notify  func(context.Context, []hindsight.Notice)
	cache   *eventCache
	// pending are the cache entries of the batch being applied, put once
	// its commit succeeded.
	pending []cachedKey
}

// Notify sets a function that Apply calls after each commit with the
// lifecycle notices of the incidents the commit changed. It runs on the
// correlator's goroutine: it must not block for long.
func (c *Correlator) Notify(f func(context.Context, []hindsight.Notice)) { c.notify = f }

// New returns a Correlator. reg may be nil.
func New(cfg Config, store Store, log *slog.Logger, reg prometheus.Registerer) (*Correlator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Correlator{cfg: cfg, store: store, log: log, metrics: m, cache: newEventCache(DefaultCacheEvents)}, nil
}

// Apply folds a batch of events (seq: the stream sequence of the last)
// and commits the result. Events the store already has change nothing.
func (c *Correlator) Apply(ctx context.Context, events []hindsight.Event, seq uint64) error {
	ids := make([]string, len(events))
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return fmt.Errorf("cannot fold: %w", err)
		}
		ids[i] = events[i].ID
	}
	known, err := c.store.Known(ids)
	if err != nil {
		return fmt.Errorf("look up event ids: %w", err)
	}
	wm, err := c.store.Watermark()
	if err != nil {
		return fmt.Errorf("read watermark: %w", err)
	}
	change := Change{Seq: seq}
	byKey := map[string][]hindsight.Event{}
	replaced := map[string]bool{}
	var keys []string
	// One copy per event ID: the one that counts (Earlier), whichever
	// came first, so the store keeps what a fold of the stream keeps.
	first := map[string]int{}
	var batch []hindsight.Event
	for _, e := range events {
		wm = latest(wm, e.ReceivedAt)
		if e.Kind == hindsight.KindTick {
			wm = latest(wm, e.Time)
			continue
		}
		if i, ok := first[e.ID]; ok {
			c.metrics.duplicates.Inc()
			if Earlier(&e, &batch[i]) < 0 {
				batch[i] = e
			}
			continue
		}
		first[e.ID] = len(batch)
		batch = append(batch, e)
	}
	for _, e := range batch {
		var replaces *Stored
		if k, ok := known[e.ID]; ok {
			if Earlier(&e, &hindsight.Event{Time: k.Time, ReceivedAt: k.ReceivedAt}) >= 0 {
				c.metrics.duplicates.Inc()
				continue
			}
			replaces = &k
			if k.Key != "" {
				// The store drops the copy it had under its key (this
				// event's, or another: a group key from another route).
				// That key's cached events, and what this batch reads of
				// it, would hold both copies, and a filter by time
				// could keep the wrong one: it is read from the store
				// next time.
				c.cache.drop(k.Key)
				replaced[k.Key] = true
			}
		} else {
			c.metrics.applied.WithLabelValues(string(e.Source)).Inc()
		}
		if e.Kind.IsDeploy() {
			change.Deploys = append(change.Deploys, KeyedEvent{Event: e, Replaces: replaces})
			continue
		}
		p := c.cfg.Place(&e)
		if p.Ignored {
			change.Events = append(change.Events, KeyedEvent{Event: e, Replaces: replaces})
			continue
		}
		key := p.Key
		if key == "" {
			key = UnkeyedKey
		}
		change.Events = append(change.Events, KeyedEvent{Key: key, Event: e, Replaces: replaces})
		if byKey[key] == nil {
			keys = append(keys, key)
		}
		byKey[key] = append(byKey[key], e)
	}
	change.Watermark = wm
	// Keys held back by open_after whose time has come fold again.
	due, err := c.store.PendingDue(wm)
	if err != nil {
		return fmt.Errorf("read pending keys: %w", err)
	}
	seeds := map[string][]Span{}
	for _, sp := range due {
		if byKey[sp.Key] == nil {
			keys = append(keys, sp.Key)
			byKey[sp.Key] = []hindsight.Event{}
		}
		seeds[sp.Key] = append(seeds[sp.Key], sp)
	}
	var resolved []hindsight.Incident
	var notices []hindsight.Notice
	c.pending = c.pending[:0]
	for _, key := range keys {
		kc, newlyResolved, err := c.refold(key, byKey[key], seeds[key], wm)
		if err != nil {
			c.cache.clear()
			return err
		}
		for i := range kc.Notices {
			kc.Notices[i].Seq, kc.Notices[i].At = seq, wm
		}
		notices = append(notices, kc.Notices...)
		change.Keys = append(change.Keys, kc)
		resolved = append(resolved, newlyResolved...)
	}
	if err := c.store.Commit(change); err != nil {
		c.cache.clear()
		return fmt.Errorf("commit batch ending at seq %d: %w", seq, err)
	}
	committed := time.Now()
	// Durations first: readers see the incident resolved from the commit
	// on, and a scrape just after should count it too.
	for _, inc := range resolved {
		c.metrics.observeResolved(&inc)
		c.log.Info("incident resolved", "incident", inc.ID, "service", inc.Service, "duration", hindsight.FormatDuration(inc.ResolvedAt.Sub(inc.StartedAt)))
	}
	for _, ke := range change.Events {
		c.metrics.visibility.Observe(committed.Sub(ke.Event.ReceivedAt).Seconds())
	}
	for _, ke := range change.Deploys {
		c.metrics.visibility.Observe(committed.Sub(ke.Event.ReceivedAt).Seconds())
	}
	for _, p := range c.pending {
		if replaced[p.key] {
			c.cache.drop(p.key)
			continue
		}
		c.cache.put(p.key, p.from, p.events)
	}
	if c.notify != nil && len(notices) > 0 {
		c.notify(ctx, notices)
	}
	return nil
}

// refold recomputes the region of a key's incidents that new events (or
// pending incidents whose time has come: seeds) can change, and says
// which incidents are gone (and where they went) and which just resolved.
//
// The region starts as the event-time spans the new events touch and
// grows to take in every stored incident within the reopen window of it,
// until none is: incidents of one key lie at least a reopen window apart,
// so what lies outside the region cannot join anything in it, and
// folding the region's events gives what folding all of the key's events
// would give there. The cost is that of the region, not of the key's
// history.
func (c *Correlator) refold(key string, added []hindsight.Event, seeds []Span, now time.Time) (KeyChange, []hindsight.Incident, error) {
	var from, to time.Time
	widen := func(a, b time.Time) {
		if from.IsZero() || a.Before(from) {
			from = a
		}
		if b.After(to) {
			to = b
		}
	}
	for i := range added {
		a, b := touches(&added[i])
		widen(a, b)
	}
	for _, sp := range seeds {
		widen(sp.Start, sp.End)
	}
	reach := c.cfg.maxReopen()
	var old []Span
	for {
		spans, err := c.store.KeySpans(key, from.Add(-reach), to.Add(reach))
		if err != nil {
			return KeyChange{}, nil, fmt.Errorf("read incidents of %q: %w", key, err)
		}
		f, t := from, to
		for _, sp := range spans {
			widen(sp.Start, sp.End)
		}
		old = spans
		if f.Equal(from) && t.Equal(to) {
			break
		}
	}
	evs, ok := c.cache.get(key, from, to)
	if !ok {
		var err error
		if evs, err = c.store.KeyEvents(key, from, to); err != nil {
			return KeyChange{}, nil, fmt.Errorf("read events of %q: %w", key, err)
		}
	}
	all := append(evs, added...)
	if !to.Before(FarFuture) {
		// The store will hold all of these from from on: keep them
		// decoded for the next batch (an open incident's, mostly).
		c.pending = append(c.pending, cachedKey{key: key, from: from, events: all})
	} else {
		c.cache.drop(key)
	}
	incs := c.cfg.Fold(key, all, now)
	kc := KeyChange{Key: key, Incidents: incs, Redirects: map[string]string{}}
	ids := make([]string, len(old))
	for i, sp := range old {
		ids[i] = sp.ID
	}
	kc.Replaced = ids

	current := map[string]*hindsight.Incident{}
	owner := map[string]string{} // alert occurrence -> incident ID
	for i := range incs {
		current[incs[i].ID] = &incs[i]
		for _, a := range incs[i].Alerts {
			owner[occurrenceOf(a)] = incs[i].ID
		}
	}
	wasResolved, wasOpened := map[string]bool{}, map[string]bool{}
	was := map[string]hindsight.Status{}
	for _, o := range old {
		was[o.ID] = o.Status
		if o.Status == hindsight.StatusResolved {
			wasResolved[o.ID] = true
		}
		wasOpened[o.ID] = o.Status.Opened()
		if current[o.ID] == nil {
			kc.Removed = append(kc.Removed, o.ID)
			kc.Redirects[o.ID] = owner[o.Anchor]
			c.log.Info("incident merged or re-anchored", "incident", o.ID, "into", owner[o.Anchor])
		}
	}
	// Anchors of incidents a human acted on: publishing, or changing a
	// published postmortem, publishes it (again), so the exported copy
	// never goes stale.
	published := map[string]bool{}
	for i := range added {
		if h := added[i].Human; h != nil && added[i].Kind.IsHuman() {
			published[h.Anchor] = true
		}
	}
	for i := range incs {
		inc := &incs[i]
		n := hindsight.Notice{Incident: inc.ID, Key: key, Status: inc.Status, Title: inc.Title, Service: inc.Service, Severity: inc.Severity}
		before, existed := was[inc.ID]
		switch {
		case !inc.Status.Opened():
			continue // pending or suppressed: not an incident yet
		case !existed || !before.Opened():
			n.Change = hindsight.NoticeOpened
		case before == hindsight.StatusResolved && inc.Status == hindsight.StatusOpen:
			n.Change = hindsight.NoticeReopened
		case before == hindsight.StatusOpen && inc.Status == hindsight.StatusResolved:
			n.Change = hindsight.NoticeResolved
		default:
			n.Change = hindsight.NoticeUpdated
		}
		n.Mark = noticeMark(inc, n.Change)
		kc.Notices = append(kc.Notices, n)
		if inc.Postmortem.State == hindsight.DraftStatePublished {
			for _, a := range inc.Alerts {
				if published[occurrenceOf(a)] {
					n.Change = hindsight.NoticePublished
					// Each human act on a published postmortem is a new
					// version of it: the last act names it.
					n.Mark = noticeMark(inc, n.Change)
					kc.Notices = append(kc.Notices, n)
					break
				}
			}
		}
	}
	for _, id := range kc.Removed {
		if into := kc.Redirects[id]; into != "" && was[id].Opened() {
			kc.Notices = append(kc.Notices, hindsight.Notice{Incident: id, Key: key, Change: hindsight.NoticeMerged, Into: into, Status: was[id], Mark: into})
		}
	}
	var resolved []hindsight.Incident
	for _, inc := range incs {
		if inc.Status == hindsight.StatusResolved && !wasResolved[inc.ID] {
			resolved = append(resolved, inc)
		}
		if inc.Status == hindsight.StatusOpen && !wasOpened[inc.ID] {
			c.log.Info("incident opened", "incident", inc.ID, "title", inc.Title, "key", inc.Key, "rule", inc.Rule)
		}
	}
	slices.Sort(kc.Removed)
	return kc, resolved, nil
}

// touches returns the event-time span a new event can change: its alert
// occurrence from start to end (to FarFuture while firing: a firing alert
// spans everything after it), or the occurrence a note is anchored to.
func touches(e *hindsight.Event) (time.Time, time.Time) {
	switch {
	case e.Alert != nil && e.Kind.Ends():
		return e.Alert.StartsAt.UTC(), e.Time.UTC()
	case e.Alert != nil:
		return e.Alert.StartsAt.UTC(), FarFuture
	case e.Note != nil || e.Human != nil:
		anchor := ""
		if e.Note != nil {
			anchor = e.Note.Anchor
		} else {
			anchor = e.Human.Anchor
		}
		if i := strings.LastIndexByte(anchor, '@'); i >= 0 {
			if t, err := time.Parse(time.RFC3339Nano, anchor[i+1:]); err == nil {
				return t.UTC(), t.UTC()
			}
		}
	}
	// Unknown: the whole key.
	return time.Unix(0, 0).UTC(), FarFuture
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func occurrenceOf(a hindsight.AlertSummary) string {
	d := hindsight.AlertDetails{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt}
	return d.OccurrenceID()
}

// noticeMark names a change of inc by what the incident records, so that
// replicas folding the same stream in different batches name it alike,
// and two different changes (a second resolution at the same time, an
// update after another) are named apart: each mark ends with the state
// the change left the incident in.
func noticeMark(inc *hindsight.Incident, change string) string {
	state := fmt.Sprintf("%s.t%d.a%d.e%d.r%d", inc.Status, len(inc.Timeline), len(inc.Alerts), len(inc.Postmortem.Edits), inc.Reopened)
	switch change {
	case hindsight.NoticeOpened:
		return inc.Anchor + "/" + state
	case hindsight.NoticeResolved:
		if inc.ResolvedAt != nil {
			return inc.ResolvedAt.UTC().Format(time.RFC3339Nano) + "/" + state
		}
	case hindsight.NoticePublished:
		if n := len(inc.Postmortem.Edits); n > 0 {
			return inc.Postmortem.Edits[n-1].EventID
		}
	}
	return state
}
