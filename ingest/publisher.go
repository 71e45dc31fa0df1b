package ingest

import (
	"context"

	"github.com/hindsight-sre/hindsight"
)

// Publisher stores events durably. natsbus.Publisher implements it over
// JetStream, publishing each event with Nats-Msg-Id set to its ID.
type Publisher interface {
	// Publish returns only after the broker acknowledged every event, and
	// reports how many of them it already had (duplicates). An error that
	// wraps hindsight.ErrUnavailable means the broker cannot be reached.
	Publish(ctx context.Context, events []hindsight.Event) (duplicates int, err error)
}

// Incidents looks incidents up, for the notes endpoint. It returns an error
// wrapping hindsight.ErrNotFound for an unknown ID, and follows the
// redirects that merges leave behind.
type Incidents interface {
	Incident(ctx context.Context, id string) (*hindsight.Incident, error)
}
