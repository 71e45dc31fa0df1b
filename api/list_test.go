package api

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// TestWriteListIsJSON checks that the list written an incident at a time
// is what JSON writes of the whole page, byte for byte.
func TestWriteListIsJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	inc := func(id string) hindsight.Incident {
		return hindsight.Incident{ID: id, Title: "<b>\"quoted\" & \u2028", Status: hindsight.StatusOpen, StartedAt: at,
			Timeline:         []hindsight.TimelineEntry{{ID: "a-1", Time: at, Kind: hindsight.KindAlertFiring, Summary: "x"}},
			SuspectedChanges: []hindsight.SuspectedChange{}, Related: []hindsight.RelatedIncident{}}
	}
	for _, c := range []struct {
		name string
		incs []hindsight.Incident
		next string
	}{
		{"empty", []hindsight.Incident{}, ""},
		{"one", []hindsight.Incident{inc("inc-1")}, ""},
		{"page", []hindsight.Incident{inc("inc-1"), inc("inc-2"), inc("inc-3")}, "c<&>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, got := httptest.NewRecorder(), httptest.NewRecorder()
			JSON(want, 200, incidentList{c.incs, c.next})
			writeList(got, c.incs, c.next)
			if !bytes.Equal(want.Body.Bytes(), got.Body.Bytes()) {
				t.Errorf("writeList wrote\n%s\nJSON writes\n%s", got.Body, want.Body)
			}
			if want.Code != got.Code || want.Header().Get("Content-Type") != got.Header().Get("Content-Type") {
				t.Errorf("status, type = %d %q; want %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
			}
		})
	}
}
