package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

// get reads one incident through the API.
func get(t *testing.T, base, id string) hindsight.Incident {
	t.Helper()
	var inc hindsight.Incident
	r := call(t, "GET", base+"/api/v1/incidents/"+id, "", nil)
	if r.status != 200 {
		t.Fatalf("GET incident %s = %d %s", id, r.status, r.body)
	}
	r.json(t, &inc)
	return inc
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The morning after: a human edits the draft, a concurrent stale edit is
// refused and says so, an entry is hidden as noise, the corrected impact
// start flows into the durations, the draft is published; and a rebuild
// of the bbolt file from the stream keeps every human word.
func TestHumanEditsSurviveConflictsAndRebuild(t *testing.T) {
	dir := t.TempDir()
	a := boot(t, dir, tokenConfig)
	base := "http://" + a.Addr()
	for _, f := range []string{"01-first-firing.json", "02-second-alert-joins.json", "04-resolved.json"} {
		postAlerts(t, a, fixture(t, f))
	}
	var inc hindsight.Incident
	eventually(t, "a resolved incident", func() bool {
		incs := incidents(t, a)
		if len(incs) == 1 {
			inc = incs[0]
		}
		return len(incs) == 1 && inc.Status == hindsight.StatusResolved
	})
	if inc.Postmortem.Version != 0 || inc.Postmortem.State != hindsight.DraftStateDraft {
		t.Fatalf("fresh postmortem = %+v, want version 0, state draft", inc.Postmortem)
	}
	draftURL := base + "/api/v1/incidents/" + inc.ID + "/draft"

	// First save, on version 0.
	edit := map[string]any{"version": 0, "summary": "Checkout failed for 2 minutes.", "root_cause": "A bad config push.",
		"action_items": []map[string]any{{"text": "Validate config pushes", "owner": "alice", "due": "2026-12-15"}}, "author": "alice"}
	r := call(t, "PUT", draftURL, "", mustJSON(t, edit))
	if r.status != http.StatusOK {
		t.Fatalf("first save = %d %s, want 200", r.status, r.body)
	}
	var saved ingest.HumanResult
	r.json(t, &saved)
	if saved.Incident == nil || saved.Incident.Postmortem.Version != 1 || saved.Incident.Postmortem.Fields.Summary != "Checkout failed for 2 minutes." {
		t.Fatalf("first save answered %s; want the incident at version 1 with the summary", r.body)
	}

	// A second human, who opened version 0 too, saves: refused, with the
	// current words to merge into.
	stale := map[string]any{"version": 0, "summary": "Bob's summary", "author": "bob"}
	r = call(t, "PUT", draftURL, "", mustJSON(t, stale))
	if r.status != http.StatusConflict {
		t.Fatalf("stale save = %d %s, want 409", r.status, r.body)
	}
	var c ingest.ConflictResult
	r.json(t, &c)
	if c.Version != 1 || c.Postmortem.Fields.Summary != "Checkout failed for 2 minutes." || !strings.Contains(c.Error, "version 0") {
		t.Fatalf("conflict = %s; want version 1, alice's summary, and a message naming the versions", r.body)
	}

	// Bad input changes nothing and says what is wrong.
	for _, bad := range []struct{ body, want string }{
		{`{"summary":"no version"}`, `"version" is missing`},
		{`{"version":1,"impact_start":"yesterday"}`, `"impact_start"`},
		{`{"version":1,"action_items":[{"owner":"x"}]}`, `action_items[0]`},
		{`{"version":1,"sumary":"typo"}`, `sumary`},
	} {
		r := call(t, "PUT", draftURL, "", []byte(bad.body))
		var e struct{ Error string }
		r.json(t, &e)
		if r.status != http.StatusBadRequest || !strings.Contains(e.Error, bad.want) {
			t.Errorf("PUT draft %s = %d %s; want 400 naming %s", bad.body, r.status, r.body, bad.want)
		}
	}

	// The second save, on version 1: impact began 10 minutes before the
	// first alert.
	impact := inc.StartedAt.Add(-10 * time.Minute)
	edit["version"], edit["impact_start"] = 1, impact.Format(time.RFC3339)
	if r := call(t, "PUT", draftURL, "", mustJSON(t, edit)); r.status != http.StatusOK {
		t.Fatalf("second save = %d %s", r.status, r.body)
	}
	// Hide the second alert's firing entry as noise.
	var noise string
	for _, e := range inc.Timeline {
		if e.Kind == hindsight.KindAlertFiring && !e.Detection {
			noise = e.ID
		}
	}
	hide := fmt.Sprintf(`{"entry":%q,"hidden":true,"author":"alice"}`, noise)
	if r := call(t, "PUT", base+"/api/v1/incidents/"+inc.ID+"/hidden", "", []byte(hide)); r.status != http.StatusOK {
		t.Fatalf("hide = %d %s", r.status, r.body)
	}
	if r := call(t, "PUT", base+"/api/v1/incidents/"+inc.ID+"/hidden", "", []byte(`{"entry":"nope","hidden":true}`)); r.status != http.StatusNotFound {
		t.Errorf("hide an unknown entry = %d, want 404", r.status)
	}
	if r := call(t, "PUT", base+"/api/v1/incidents/"+inc.ID+"/state", "", []byte(`{"state":"published","author":"alice"}`)); r.status != http.StatusOK {
		t.Fatalf("publish = %d %s", r.status, r.body)
	}
	if r := call(t, "PUT", base+"/api/v1/incidents/"+inc.ID+"/state", "", []byte(`{"state":"done"}`)); r.status != http.StatusBadRequest {
		t.Errorf("unknown state = %d, want 400", r.status)
	}

	// A partial save changes what it names and keeps the rest; an empty
	// field clears it.
	if r := call(t, "PUT", draftURL, "", []byte(`{"version":2,"resolution":"Rolled back to v2.3.0.","impact":""}`)); r.status != http.StatusOK {
		t.Fatalf("partial save = %d %s", r.status, r.body)
	}
	got := get(t, base, inc.ID)
	if f := got.Postmortem.Fields; f.Resolution != "Rolled back to v2.3.0." || f.Summary != "Checkout failed for 2 minutes." ||
		f.RootCause != "A bad config push." || len(f.ActionItems) != 1 || f.ImpactStart == nil || !f.ImpactStart.Equal(impact) || f.Impact != "" {
		t.Fatalf("after a partial save the fields are %+v; want the resolution changed and the rest kept", f)
	}
	pm := got.Postmortem
	if pm.Version != 3 || pm.State != hindsight.DraftStatePublished || pm.PublishedAt == nil || len(pm.Hidden) != 1 || pm.Hidden[0] != noise {
		t.Fatalf("postmortem = %+v; want version 3, published, %s hidden", pm, noise)
	}
	// The stale save was refused before it reached the stream (the fold
	// refuses the ones that race: see correlate's tests).
	if n := len(pm.Edits); n != 5 {
		t.Errorf("edits = %+v; want 5 acts recorded", pm.Edits)
	}
	// Durations count from the corrected start.
	if got.TimeToResolve == nil || *got.TimeToResolve != hindsight.Seconds(got.ResolvedAt.Sub(impact).Seconds()) {
		t.Errorf("time to resolve = %v, want from the corrected impact start %s", got.TimeToResolve, impact)
	}
	for _, e := range got.Timeline {
		if e.Hidden != (e.ID == noise) {
			t.Errorf("entry %s hidden = %v", e.ID, e.Hidden)
		}
	}
	md := string(call(t, "GET", base+"/api/v1/incidents/"+inc.ID+"/postmortem.md", "", nil).body)
	for _, want := range []string{"Checkout failed for 2 minutes.", "A bad config push.", "Validate config pushes", "alice", "2026-12-15"} {
		if !strings.Contains(md, want) {
			t.Errorf("postmortem lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Bob's summary") {
		t.Errorf("the refused edit reached the draft:\n%s", md)
	}
	if n := strings.Count(md, "**Fired:**"); n != 1 {
		t.Errorf("draft shows %d fired entries, want 1 (the other is hidden):\n%s", n, md)
	}

	// Rebuild: remove the bbolt file; the stream alone gives it back.
	a.Close()
	if err := os.Remove(filepath.Join(dir, "hindsight.db")); err != nil {
		t.Fatal(err)
	}
	a = boot(t, dir, tokenConfig)
	base = "http://" + a.Addr()
	var again hindsight.Incident
	eventually(t, "the incident rebuilt with its postmortem", func() bool {
		incs := incidents(t, a)
		if len(incs) == 1 {
			again = get(t, base, incs[0].ID)
		}
		return len(incs) == 1 && again.Postmortem.Version == 3 && len(again.Postmortem.Edits) == 5
	})
	want, _ := json.Marshal(got.Postmortem)
	have, _ := json.Marshal(again.Postmortem)
	if string(want) != string(have) || again.ID != inc.ID {
		t.Fatalf("after rebuild:\n%s\nwant\n%s", have, want)
	}
}

// An outage no alert caught: a human declares it; an alert that fires
// later for the same service and time joins it; the human ends the
// declared part, and the incident resolves when the alert does.
func TestDeclaredIncidentTakesLaterAlerts(t *testing.T) {
	a := boot(t, t.TempDir(), tokenConfig)
	base := "http://" + a.Addr()
	start := time.Now().UTC().Add(-40 * time.Minute).Truncate(time.Second)
	body := fmt.Sprintf(`{"service":"checkout","title":"Customers report failed payments","start":%q,"severity":"critical","author":"carol"}`, start.Format(time.RFC3339))
	r := call(t, "POST", base+"/api/v1/incidents", "", []byte(body))
	if r.status != http.StatusCreated {
		t.Fatalf("declare = %d %s, want 201", r.status, r.body)
	}
	var res ingest.HumanResult
	r.json(t, &res)
	if res.Incident == nil || !res.Incident.Declared || res.Incident.Status != hindsight.StatusOpen || !res.Incident.StartedAt.Equal(start) {
		t.Fatalf("declare answered %s; want the open declared incident starting %s", r.body, start)
	}
	id := res.Incident.ID
	for _, bad := range []string{`{"title":"x"}`, `{"service":"a","title":"b","start":"soon"}`, `{"service":"a","title":"b","start":"2999-01-01T00:00:00Z"}`} {
		if r := call(t, "POST", base+"/api/v1/incidents", "", []byte(bad)); r.status != http.StatusBadRequest {
			t.Errorf("declare %s = %d %s, want 400", bad, r.status, r.body)
		}
	}

	// An alert for checkout fires 10 minutes after the declared start.
	alert := strings.ReplaceAll(string(fixture(t, "01-first-firing.json")), "2026-11-22T04:08:14Z", start.Add(10*time.Minute).Format(time.RFC3339))
	postAlerts(t, a, []byte(alert))
	eventually(t, "the alert on the declared incident", func() bool {
		return kinds(get(t, base, id)) == "incident.declared,alert.firing"
	})
	if incs := incidents(t, a); len(incs) != 1 {
		t.Fatalf("%d incidents, want the declared one only", len(incs))
	}

	end := fmt.Sprintf(`{"time":%q}`, start.Add(30*time.Minute).Format(time.RFC3339))
	r = call(t, "POST", base+"/api/v1/incidents/"+id+"/end", "", []byte(end))
	if r.status != http.StatusOK {
		t.Fatalf("end = %d %s", r.status, r.body)
	}
	got := get(t, base, id)
	if got.Status != hindsight.StatusOpen || kinds(got) != "incident.declared,alert.firing,incident.ended" {
		t.Fatalf("after end: %s %s; want still open (its alert fires), with the end on the timeline", got.Status, kinds(got))
	}
	if r := call(t, "POST", base+"/api/v1/incidents/"+id+"/end", "", []byte(end)); r.status != http.StatusConflict {
		t.Errorf("a second end = %d %s, want 409", r.status, r.body)
	}
	if r := call(t, "PUT", base+"/api/v1/incidents/"+id+"/state", "", []byte(`{"state":"published"}`)); r.status != http.StatusConflict {
		t.Errorf("publish while open = %d %s, want 409", r.status, r.body)
	}
}
