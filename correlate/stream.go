package correlate

import (
	"cmp"
	"slices"
	"sort"
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
			if p.Ignored {
				continue
			}
			key := p.Key
			if key == "" {
				key = UnkeyedKey
			}
			byKey[key] = append(byKey[key], e)
		}
	}
	var out []hindsight.Incident
	for key, evs := range byKey {
		out = append(out, c.Fold(key, evs, now)...)
	}
	sortIncidents(out)
	src := memorySource{incidents: slices.Clone(out), deploys: uniqueSorted(deploys)}
	for i := range out {
		_ = c.EnrichFrom(src, &out[i]) // memorySource never fails
	}
	return out
}

// Prefetch reads once from src the context that Enrich needs for all of
// incs (a page of a list), and returns it as a source in memory: the
// incidents of a page are neighbours of one another, and reading each
// one's neighbours again for each would decode them many times.
func (c Config) Prefetch(src ContextSource, incs []hindsight.Incident) (ContextSource, error) {
	if len(incs) == 0 {
		return memorySource{}, nil
	}
	var df, dt, sf, st time.Time
	for i := range incs {
		a, b, x, y := c.ContextWindow(&incs[i])
		if i == 0 || a.Before(df) {
			df = a
		}
		if b.After(dt) {
			dt = b
		}
		if i == 0 || x.Before(sf) {
			sf = x
		}
		if y.After(st) {
			st = y
		}
	}
	deploys, err := src.Deploys(df, dt)
	if err != nil {
		return nil, err
	}
	near, err := src.Neighbours(sf, st)
	if err != nil {
		return nil, err
	}
	sortIncidents(near)
	return memorySource{incidents: near, deploys: uniqueSorted(deploys)}, nil
}

// memorySource is a ContextSource over incidents sorted by start and
// deploys sorted by time.
type memorySource struct {
	incidents []hindsight.Incident
	deploys   []hindsight.Event
}

func (m memorySource) Deploys(from, to time.Time) ([]hindsight.Event, error) {
	return between(m.deploys, from, to, func(e *hindsight.Event) time.Time { return e.Time }), nil
}

func (m memorySource) Neighbours(from, to time.Time) ([]hindsight.Incident, error) {
	return between(m.incidents, from, to, func(inc *hindsight.Incident) time.Time { return inc.StartedAt }), nil
}

// between returns the run of s (sorted by at) whose time lies in
// [from, to].
func between[T any](s []T, from, to time.Time, at func(*T) time.Time) []T {
	i := sort.Search(len(s), func(i int) bool { return !at(&s[i]).Before(from) })
	j := sort.Search(len(s), func(i int) bool { return at(&s[i]).After(to) })
	return s[i:max(i, j)]
}

func sortIncidents(incs []hindsight.Incident) {
	slices.SortFunc(incs, func(a, b hindsight.Incident) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.ID, b.ID))
	})
}
