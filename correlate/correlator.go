package correlate

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
)

// Store keeps events and the incidents folded from them. There is one
// writer, the Correlator, so reads between its commits see its last
// commit.
type Store interface {
	// Known returns which of ids the store already has.
	Known(ids []string) (map[string]bool, error)
	// KeyEvents returns every event of a key.
	KeyEvents(key string) ([]hindsight.Event, error)
	// KeyIncidents returns the incidents of a key as last committed.
	KeyIncidents(key string) ([]hindsight.Incident, error)
	// Watermark returns the Change.Watermark last committed.
	Watermark() (time.Time, error)
	// PendingDue returns the keys whose KeyChange.Pending is at or
	// before t.
	PendingDue(t time.Time) ([]string, error)
	// Commit applies a change in one transaction.
	Commit(Change) error
}

// Change is what one batch of events does to the store.
type Change struct {
	// Events are new alert and note events with their key; an ignored
	// alert has the key "" and is kept only so it is known.
	Events []KeyedEvent
	// Deploys are new deploy events, kept by time for Enrich.
	Deploys []hindsight.Event
	Keys    []KeyChange
	// Watermark is how far event time has come: the latest receipt (or
	// tick) of any event so far. It never moves back.
	Watermark time.Time
	// Seq is the stream sequence of the batch's last event.
	Seq uint64
}

// KeyedEvent is an event with its correlation key.
type KeyedEvent struct {
	Key   string
	Event hindsight.Event
}

// KeyChange replaces the incidents of one key.
type KeyChange struct {
	Key       string
	Incidents []hindsight.Incident
	// Removed are IDs of the key's incidents that no longer exist; each
	// has an entry in Redirects saying which incident took it over.
	Removed   []string
	Redirects map[string]string
	// Pending is the earliest time one of the key's pending incidents
	// opens if its alerts still fire; zero when there is none.
	Pending time.Time
}

// Correlator folds batches of events into the store.
type Correlator struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	metrics *metrics
}

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
	return &Correlator{cfg: cfg, store: store, log: log, metrics: m}, nil
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
	var keys []string
	for _, e := range events {
		wm = latest(wm, e.ReceivedAt)
		if e.Kind == hindsight.KindTick {
			wm = latest(wm, e.Time)
			continue
		}
		if known[e.ID] {
			c.metrics.duplicates.Inc()
			continue
		}
		known[e.ID] = true
		c.metrics.applied.WithLabelValues(string(e.Source)).Inc()
		if e.Kind.IsDeploy() {
			change.Deploys = append(change.Deploys, e)
			continue
		}
		p := c.cfg.Place(&e)
		if p.Ignored {
			change.Events = append(change.Events, KeyedEvent{Event: e})
			continue
		}
		key := p.Key
		if key == "" {
			// Still kept, so a rule change can place it on replay.
			key = "unkeyed"
		}
		change.Events = append(change.Events, KeyedEvent{Key: key, Event: e})
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
	for _, k := range due {
		if byKey[k] == nil {
			keys = append(keys, k)
			byKey[k] = []hindsight.Event{}
		}
	}
	var resolved []hindsight.Incident
	for _, key := range keys {
		kc, newlyResolved, err := c.refold(key, byKey[key], wm)
		if err != nil {
			return err
		}
		change.Keys = append(change.Keys, kc)
		resolved = append(resolved, newlyResolved...)
	}
	if err := c.store.Commit(change); err != nil {
		return fmt.Errorf("commit batch ending at seq %d: %w", seq, err)
	}
	for _, inc := range resolved {
		c.metrics.observeResolved(&inc)
		c.log.Info("incident resolved", "incident", inc.ID, "service", inc.Service, "duration", hindsight.FormatDuration(inc.ResolvedAt.Sub(inc.StartedAt)))
	}
	return nil
}

// refold recomputes a key's incidents with its new events, and says which
// incidents are gone (and where they went) and which just resolved.
func (c *Correlator) refold(key string, added []hindsight.Event, now time.Time) (KeyChange, []hindsight.Incident, error) {
	old, err := c.store.KeyIncidents(key)
	if err != nil {
		return KeyChange{}, nil, fmt.Errorf("read incidents of %q: %w", key, err)
	}
	evs, err := c.store.KeyEvents(key)
	if err != nil {
		return KeyChange{}, nil, fmt.Errorf("read events of %q: %w", key, err)
	}
	incs := c.cfg.Fold(key, append(evs, added...), now)
	kc := KeyChange{Key: key, Incidents: incs, Redirects: map[string]string{}}
	for _, inc := range incs {
		if inc.OpensAt != nil && (kc.Pending.IsZero() || inc.OpensAt.Before(kc.Pending)) {
			kc.Pending = *inc.OpensAt
		}
	}

	current := map[string]*hindsight.Incident{}
	owner := map[string]string{} // alert occurrence -> incident ID
	for i := range incs {
		current[incs[i].ID] = &incs[i]
		for _, a := range incs[i].Alerts {
			owner[occurrenceOf(a)] = incs[i].ID
		}
	}
	wasResolved := map[string]bool{}
	for _, o := range old {
		if o.Status == hindsight.StatusResolved {
			wasResolved[o.ID] = true
		}
		if current[o.ID] == nil {
			kc.Removed = append(kc.Removed, o.ID)
			kc.Redirects[o.ID] = owner[o.Anchor]
			c.log.Info("incident merged or re-anchored", "incident", o.ID, "into", owner[o.Anchor])
		}
	}
	var resolved []hindsight.Incident
	for _, inc := range incs {
		if inc.Status == hindsight.StatusResolved && !wasResolved[inc.ID] {
			resolved = append(resolved, inc)
		}
	}
	slices.Sort(kc.Removed)
	return kc, resolved, nil
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
