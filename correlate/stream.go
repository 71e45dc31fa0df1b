package correlate

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// FoldStream computes every incident a set of events gives, enriched,
// oldest first: what the Correlator and a store hold after folding the
// same events in any order and batching, computed in memory. Replay's
// comparisons and the scenario tests use it; it is the same Place, Fold
// and Enrich as production.
func (c Config) FoldStream(events []hindsight.Event) []hindsight.Incident {
	byKey := map[string][]hindsight.Event{}
	var deploys []hindsight.Event
	var now time.Time
	for _, e := range events {
		if e.ReceivedAt.After(now) {
			now = e.ReceivedAt
		}
		switch {
		case e.Kind == hindsight.KindTick:
			if e.Time.After(now) {
				now = e.Time
			}
		case e.Kind.IsDeploy():
			deploys = append(deploys, e)
		default:
			p := c.Place(&e)
			if p.Ignored || p.Key == "" {
				continue
			}
			byKey[p.Key] = append(byKey[p.Key], e)
		}
	}
	var out []hindsight.Incident
	for key, evs := range byKey {
		out = append(out, c.Fold(key, evs, now)...)
	}
	sortIncidents(out)
	folded := slices.Clone(out)
	for i := range out {
		c.Enrich(&out[i], deploys, folded)
	}
	return out
}

func sortIncidents(incs []hindsight.Incident) {
	slices.SortFunc(incs, func(a, b hindsight.Incident) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.ID, b.ID))
	})
}
