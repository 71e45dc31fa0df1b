package hindsight

import "errors"

var (
	// ErrUnavailable means the event broker cannot take events right now;
	// the caller should retry (HTTP 503 with Retry-After).
	ErrUnavailable = errors.New("event broker unavailable")
	// ErrNotFound means no incident has that ID.
	ErrNotFound = errors.New("not found")
)
