package ingest

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hindsight-sre/hindsight"
)

// A draft edit's body, whatever it holds, is either refused with a 4xx
// that says why, or gives fields within bounds that keep what the body
// does not name.
func FuzzDraftPayload(f *testing.F) {
	f.Add([]byte(`{"version":0,"summary":"s","impact":"i","root_cause":"r","resolution":"x","action_items":[{"text":"t","owner":"o","due":"2026-12-01","done":true}],"impact_start":"2026-11-22T04:00:00Z"}`))
	f.Add([]byte(`{"version":3,"summary":""}`))
	f.Add([]byte(`{"version":1,"action_items":[]}`))
	f.Add([]byte(`{"version":1,"impact_start":"2999-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"version":1,"action_items":[{"text":" ","due":"tomorrow"}]}`))
	f.Add([]byte(`{"version":null,"summary":null}`))
	start := fuzzReceivedAt.Add(-time.Hour)
	cur := hindsight.PostmortemFields{Summary: "kept", Impact: "kept", RootCause: "kept", Resolution: "kept",
		ActionItems: []hindsight.ActionItem{{Text: "kept"}}, ImpactStart: &start}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p draftPayload
		err := decodeObject(body, &p, true)
		var got hindsight.PostmortemFields
		if err == nil {
			got, err = p.parse(cur, fuzzReceivedAt)
		}
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status/100 != 4 || re.reason == "" || re.msg == "" {
				t.Fatalf("error %#v: want a *requestError with a 4xx, a reason and a message", err)
			}
			return
		}
		for name, v := range map[string]struct {
			set  bool
			got  string
			keep string
		}{
			"summary": {p.Summary != nil, got.Summary, cur.Summary}, "impact": {p.Impact != nil, got.Impact, cur.Impact},
			"root_cause": {p.RootCause != nil, got.RootCause, cur.RootCause}, "resolution": {p.Resolution != nil, got.Resolution, cur.Resolution},
		} {
			if !v.set && v.got != v.keep {
				t.Fatalf("%s not in the body changed from %q to %q", name, v.keep, v.got)
			}
			if len(v.got) > maxFieldBytes {
				t.Fatalf("%s is %d bytes", name, len(v.got))
			}
		}
		if p.ActionItems == nil && len(got.ActionItems) != 1 {
			t.Fatalf("action items not in the body changed: %+v", got.ActionItems)
		}
		for _, a := range got.ActionItems {
			if a.Text == "" || len(a.Text) > maxNoteBytes || len(a.Owner) > 200 || !utf8.ValidString(a.Text) {
				t.Fatalf("action item %+v out of bounds", a)
			}
		}
		if s := got.ImpactStart; s != nil && (s.Location() != time.UTC || s.Before(EarliestTime) || s.After(fuzzReceivedAt.Add(MaxFutureSkew))) {
			t.Fatalf("impact start %v: want UTC, and plausible", s)
		}
	})
}
