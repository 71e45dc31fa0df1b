package ingest

import (
	"fmt"
	"time"
)

// The rule for implausible timestamps, applied to every event time a
// sender gives (alert startsAt and endsAt, deploy and note times): a time
// more than MaxFutureSkew after Hindsight's clock is rejected (clock skew
// beyond that is a broken sender, and such an event would sit in the
// future of every timeline), and so is a time before EarliestTime (an
// unset or garbage clock). Anything in between is accepted: backfills of
// old incidents are legitimate.
const MaxFutureSkew = time.Hour

// EarliestTime is the earliest event time accepted.
var EarliestTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func checkTime(field string, t, receivedAt time.Time) error {
	switch {
	case t.Before(EarliestTime):
		return fmt.Errorf("%s %s is before %s: not a plausible event time", field, t.UTC().Format(time.RFC3339), EarliestTime.Format("2006-01-02"))
	case t.After(receivedAt.Add(MaxFutureSkew)):
		return fmt.Errorf("%s %s is more than %s after Hindsight's clock (%s): check the sender's clock", field,
			t.UTC().Format(time.RFC3339), MaxFutureSkew, receivedAt.UTC().Format(time.RFC3339))
	}
	return nil
}
