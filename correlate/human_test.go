package correlate_test

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
)

// act is a human act on the incident anchored at occurrence anchor, at
// minute when (seconds sec after it: acts within a minute are ordered).
func act(id string, kind hindsight.Kind, anchor string, when, sec int, h hindsight.HumanDetails) hindsight.Event {
	h.Key, h.Anchor, h.IncidentID = "checkout", anchor, "x"
	tm := at(when).Add(time.Duration(sec) * time.Second)
	return hindsight.Event{ID: id, Kind: kind, Source: hindsight.SourceHuman, Time: tm, ReceivedAt: tm, Summary: string(kind), Human: &h}
}

func edit(id string, when, sec, base int, summary string) hindsight.Event {
	return act(id, hindsight.KindDraftEdited, occ("a", 0), when, sec, hindsight.HumanDetails{BaseVersion: base, Fields: &hindsight.PostmortemFields{Summary: summary}})
}

// Human acts fold by time, whatever order they arrive in: two edits made
// on the same version race, and the later one is refused, never applied
// over the other's words.
func TestPostmortemFold(t *testing.T) {
	alerts := []hindsight.Event{firing("a", "HighLatency", 0, 1), firing("b", "Errors", 2, 3), resolved("a", "HighLatency", 0, 20), resolved("b", "Errors", 2, 25)}
	impact := at(-15)
	tests := []struct {
		name        string
		acts        []hindsight.Event
		wantVersion int
		wantSummary string
		wantHidden  []string
		wantState   hindsight.DraftState
		conflicts   []string
		ttr         time.Duration
	}{
		{name: "no acts", wantState: hindsight.DraftStateDraft, ttr: 25 * time.Minute},
		{name: "two edits in turn",
			acts:        []hindsight.Event{edit("e1", 30, 0, 0, "first"), edit("e2", 31, 0, 1, "second")},
			wantVersion: 2, wantSummary: "second", wantState: hindsight.DraftStateDraft, ttr: 25 * time.Minute},
		{name: "a race on version 1: the later is refused",
			acts:        []hindsight.Event{edit("e1", 30, 0, 0, "first"), edit("e2", 31, 0, 1, "alice"), edit("e3", 31, 5, 1, "bob")},
			wantVersion: 2, wantSummary: "alice", wantState: hindsight.DraftStateDraft, conflicts: []string{"e3"}, ttr: 25 * time.Minute},
		{name: "an edit on a version from the future is refused",
			acts:        []hindsight.Event{edit("e1", 30, 0, 3, "lost")},
			wantVersion: 0, wantState: hindsight.DraftStateDraft, conflicts: []string{"e1"}, ttr: 25 * time.Minute},
		{name: "hide, hide again, show another, publish",
			acts: []hindsight.Event{
				act("h1", hindsight.KindEntryHidden, occ("b", 2), 30, 0, hindsight.HumanDetails{Entry: "x1"}),
				act("h2", hindsight.KindEntryHidden, occ("a", 0), 30, 1, hindsight.HumanDetails{Entry: "x1"}),
				act("h3", hindsight.KindEntryHidden, occ("a", 0), 30, 2, hindsight.HumanDetails{Entry: "x2"}),
				act("h4", hindsight.KindEntryShown, occ("a", 0), 30, 3, hindsight.HumanDetails{Entry: "x2"}),
				act("s1", hindsight.KindDraftState, occ("a", 0), 31, 0, hindsight.HumanDetails{State: hindsight.DraftStateReview}),
				act("s2", hindsight.KindDraftState, occ("a", 0), 32, 0, hindsight.HumanDetails{State: hindsight.DraftStatePublished}),
			},
			wantHidden: []string{"x1"}, wantState: hindsight.DraftStatePublished, ttr: 25 * time.Minute},
		{name: "a corrected impact start counts in time to resolve",
			acts: []hindsight.Event{act("e1", hindsight.KindDraftEdited, occ("a", 0), 30, 0,
				hindsight.HumanDetails{Fields: &hindsight.PostmortemFields{Summary: "s", ImpactStart: &impact}})},
			wantVersion: 1, wantSummary: "s", wantState: hindsight.DraftStateDraft, ttr: 40 * time.Minute},
	}
	cfg := correlate.DefaultConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := append(append([]hindsight.Event{}, alerts...), tt.acts...)
			var first *hindsight.Incident
			for i := range 20 {
				// Arrival order does not matter.
				rand.New(rand.NewPCG(uint64(i), 7)).Shuffle(len(evs), func(a, b int) { evs[a], evs[b] = evs[b], evs[a] })
				incs := cfg.Fold("checkout", evs, at(60))
				if len(incs) != 1 {
					t.Fatalf("%d incidents, want 1", len(incs))
				}
				if first == nil {
					first = &incs[0]
				} else if !reflect.DeepEqual(first.Postmortem, incs[0].Postmortem) {
					t.Fatalf("arrival order changed the postmortem:\n%+v\n%+v", first.Postmortem, incs[0].Postmortem)
				}
			}
			pm := first.Postmortem
			var conflicts []string
			for _, e := range pm.Edits {
				if e.Conflict {
					conflicts = append(conflicts, e.EventID)
				}
			}
			if pm.Version != tt.wantVersion || pm.Fields.Summary != tt.wantSummary || pm.State != tt.wantState ||
				!reflect.DeepEqual(pm.Hidden, append([]string{}, tt.wantHidden...)) || !reflect.DeepEqual(conflicts, tt.conflicts) || len(pm.Edits) != len(tt.acts) {
				t.Errorf("postmortem = %+v\nconflicts %v", pm, conflicts)
			}
			if got := first.TimeToResolve.Duration(); got != tt.ttr {
				t.Errorf("time to resolve = %s, want %s", got, tt.ttr)
			}
		})
	}
}
