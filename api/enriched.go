package api

import (
	"context"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

// Enriched serves the stored incidents with their context (suspected
// changes, deploys on the timeline, related incidents), joined at read
// time by the correlation settings from what the store holds then. It is
// what the API serves.
type Enriched struct {
	Store  *boltstore.Store
	Config correlate.Config
}

// Incident implements Incidents.
func (e Enriched) Incident(ctx context.Context, id string) (*hindsight.Incident, error) {
	inc, err := e.Store.Incident(ctx, id)
	if err != nil {
		return nil, err
	}
	return inc, e.Config.EnrichFrom(e.Store, inc)
}

// List implements Incidents.
func (e Enriched) List(ctx context.Context, o boltstore.ListOptions) ([]hindsight.Incident, string, error) {
	incs, next, err := e.Store.List(ctx, o)
	if err != nil {
		return nil, "", err
	}
	src, err := e.Config.Prefetch(e.Store, incs)
	if err != nil {
		return nil, "", err
	}
	for i := range incs {
		if err := e.Config.EnrichFrom(src, &incs[i]); err != nil {
			return nil, "", err
		}
	}
	return incs, next, nil
}

// IncidentOfEvent returns, with its context, the incident an event was
// folded into.
func (e Enriched) IncidentOfEvent(ctx context.Context, eventID string) (*hindsight.Incident, error) {
	inc, err := e.Store.IncidentOfEvent(ctx, eventID)
	if err != nil {
		return nil, err
	}
	return inc, e.Config.EnrichFrom(e.Store, inc)
}

// EventPlace implements EventPlaces.
func (e Enriched) EventPlace(ctx context.Context, eventID string) (boltstore.EventPlace, error) {
	return e.Store.EventPlace(ctx, eventID)
}
