package ingest

import (
	"fmt"
	"strings"
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

// timeField parses the optional RFC 3339 time of a human's request body
// (field name, value s) and checks it is plausible; set is false when s is
// blank. Errors are *requestError.
func timeField(name, s string, receivedAt time.Time) (t time.Time, set bool, err error) {
	if s = strings.TrimSpace(s); s == "" {
		return time.Time{}, false, nil
	}
	t, err = time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, badRequest(reasonBadValue, "field %q: %q is not an RFC 3339 time like 2026-11-20T10:42:00Z", name, clip(s))
	}
	t = t.UTC()
	if err := checkTime(fmt.Sprintf("field %q:", name), t, receivedAt); err != nil {
		return time.Time{}, false, badRequest(reasonBadValue, "%s", err.Error())
	}
	return t, true, nil
}
