package boltstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameAsCommitted checks that every reader gives inc back as it was
// committed, byte for byte in JSON.
func sameAsCommitted(t *testing.T, s *boltstore.Store, inc hindsight.Incident) {
	t.Helper()
	ctx := context.Background()
	want := mustJSON(t, inc)
	got, err := s.Incident(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g := mustJSON(t, got); g != want {
		t.Fatalf("Incident:\n got %s\nwant %s", g, want)
	}
	list, _, err := s.List(ctx, boltstore.ListOptions{Status: inc.Status})
	if err != nil || len(list) != 1 || mustJSON(t, list[0]) != want {
		t.Fatalf("List = %v, %v:\nwant %s", list, err, want)
	}
	between, err := s.StartedBetween(inc.StartedAt, inc.StartedAt)
	if err != nil || len(between) != 1 || mustJSON(t, between[0]) != want {
		t.Fatalf("StartedBetween = %v, %v", between, err)
	}
	near, err := s.Neighbours(inc.StartedAt, inc.StartedAt)
	noTimeline := inc
	noTimeline.Timeline = nil
	if err != nil || len(near) != 1 || mustJSON(t, near[0]) != mustJSON(t, noTimeline) {
		t.Fatalf("Neighbours = %v, %v", near, err)
	}
	var occs []string
	for _, a := range inc.Alerts {
		d := hindsight.AlertDetails{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt}
		occs = append(occs, d.OccurrenceID())
	}
	n := 0
	if err := s.IncidentAlerts(func(id, key string, got []string) error {
		if id != inc.ID {
			return nil
		}
		n++
		if key != inc.Key || !slices.Equal(got, occs) && len(got)+len(occs) > 0 {
			t.Fatalf("IncidentAlerts(%s, %s) = %v, want %v", id, key, got, occs)
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("IncidentAlerts: %d incidents, %v", n, err)
	}
}

func entry(id string, at time.Time, kind hindsight.Kind) hindsight.TimelineEntry {
	return hindsight.TimelineEntry{ID: id, Time: at, Kind: kind, Source: hindsight.SourceAlertmanager, Summary: "s " + id,
		Labels: map[string]string{"service": "checkout"}}
}

func alert(fp string, at time.Time) hindsight.AlertSummary {
	return hindsight.AlertSummary{Name: "A", Fingerprint: fp, Labels: map[string]string{"fp": fp}, StartsAt: at, ReceivedAt: at}
}

// Timelines and alerts kept apart come back exactly as committed, through
// every change a batch can make to them; those the layout cannot key in
// order stay in the incident; an incident that goes takes them along.
func TestIncidentListsKeptApart(t *testing.T) {
	boltstore.KeepListsApart(t, 1)
	s, path := openStore(t)
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	inc := incident("inc", base, hindsight.StatusOpen)
	var replaced []string
	commit := func(inc hindsight.Incident) {
		t.Helper()
		if err := s.Commit(correlate.Change{Keys: []correlate.KeyChange{{Key: "checkout", Incidents: []hindsight.Incident{inc}, Replaced: replaced}}}); err != nil {
			t.Fatal(err)
		}
		replaced = []string{inc.ID}
		sameAsCommitted(t, s, inc)
	}
	commit(inc) // null lists
	inc.Timeline, inc.Alerts = []hindsight.TimelineEntry{}, []hindsight.AlertSummary{}
	commit(inc) // empty lists
	inc.Timeline = []hindsight.TimelineEntry{
		entry("d", base, hindsight.KindDeploySucceeded), entry("b", base, hindsight.KindAlertFiring), entry("c", base, hindsight.KindAlertFiring),
		entry("n", base, hindsight.KindNote), entry("r", base.Add(time.Minute), hindsight.KindAlertResolved)}
	inc.Alerts = []hindsight.AlertSummary{alert("f2", base), alert("f1", base.Add(time.Second))}
	commit(inc)
	commit(inc) // unchanged
	// Entries added, one changed, one gone.
	inc.Timeline = slices.Clone(inc.Timeline)
	inc.Timeline[1].Hidden = true
	inc.Timeline = slices.Delete(inc.Timeline, 3, 4)
	inc.Timeline = append(inc.Timeline, entry("x", base.Add(2*time.Minute), hindsight.KindAlertFiring), entry("y", base.Add(3*time.Minute), hindsight.KindNote))
	inc.Alerts = append(slices.Clone(inc.Alerts), alert("f3", base.Add(time.Hour)))
	end := base.Add(2 * time.Hour)
	inc.Alerts[0].EndsAt = &end
	commit(inc)
	// Out of the store's order, or with two entries of one key: kept in
	// the incident, and back apart when in order again.
	sorted := inc
	inc.Timeline = append(slices.Clone(inc.Timeline), inc.Timeline[0])
	inc.Alerts = slices.Clone(inc.Alerts)
	slices.Reverse(inc.Alerts)
	commit(inc)
	commit(sorted)
	inc = sorted
	inc.Timeline = slices.Clone(inc.Timeline)
	inc.Timeline[0].Labels = map[string]string{"service": "checkout", "pod": "a"}
	commit(inc)
	inc.Status = hindsight.StatusResolved
	commit(inc)
	inc.Timeline = slices.Clone(inc.Timeline[1:])
	commit(inc)
	// The incident goes, merged into another.
	other := incident("other", base.Add(-time.Hour), hindsight.StatusResolved)
	other.Timeline = []hindsight.TimelineEntry{entry("o", base, hindsight.KindAlertFiring)}
	if err := s.Commit(correlate.Change{Keys: []correlate.KeyChange{{Key: "checkout", Incidents: []hindsight.Incident{other}, Replaced: replaced,
		Removed: []string{"inc"}, Redirects: map[string]string{"inc": "other"}}}}); err != nil {
		t.Fatal(err)
	}
	sameAsCommitted(t, s, other)
	s.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{"timelines", "alerts"} {
			if tx.Bucket([]byte(b)).Bucket([]byte("inc")) != nil {
				t.Errorf("bucket %s still has the removed incident's", b)
			}
		}
		if tx.Bucket([]byte("timelines")).Bucket([]byte("other")) == nil {
			t.Errorf("the other incident's timeline is not kept apart")
		}
		return nil
	})
}

// A file of schema version 2, with incidents stored whole, is migrated
// at Open and reads the same.
func TestOpenMigratesSchema2(t *testing.T) {
	boltstore.KeepListsApart(t, 1)
	path := filepath.Join(t.TempDir(), "db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	inc := incident("inc", base, hindsight.StatusOpen)
	inc.Timeline = []hindsight.TimelineEntry{entry("a", base, hindsight.KindAlertFiring), entry("b", base.Add(time.Minute), hindsight.KindNote)}
	inc.Alerts = []hindsight.AlertSummary{alert("f1", base)}
	empty := incident("empty", base.Add(time.Hour), hindsight.StatusResolved)
	empty.Timeline = []hindsight.TimelineEntry{}
	if err := s.Commit(correlate.Change{Keys: []correlate.KeyChange{{Key: "checkout", Incidents: []hindsight.Incident{inc, empty}}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Make it the file schema 2 wrote.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"timelines", "alerts"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		for _, i := range []hindsight.Incident{inc, empty} {
			if err := tx.Bucket([]byte("incidents")).Put([]byte(i.ID), []byte(mustJSON(t, i))); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, i := range []hindsight.Incident{inc, empty} {
		got, err := s.Incident(ctx, i.ID)
		if err != nil || mustJSON(t, got) != mustJSON(t, i) {
			t.Fatalf("after migration Incident(%s) = %s, %v; want %s", i.ID, mustJSON(t, got), err, mustJSON(t, i))
		}
	}
	// And it goes on from there.
	inc.Timeline = append(slices.Clone(inc.Timeline), entry("c", base.Add(2*time.Minute), hindsight.KindAlertResolved))
	if err := s.Commit(correlate.Change{Keys: []correlate.KeyChange{{Key: "checkout", Incidents: []hindsight.Incident{inc}, Replaced: []string{"inc"}}}}); err != nil {
		t.Fatal(err)
	}
	sameAsCommitted(t, s, inc)
	s.Close()
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("schema")); string(v) != "3" {
			t.Errorf("schema after migration = %q", v)
		}
		if tx.Bucket([]byte("timelines")).Bucket([]byte("inc")) == nil || tx.Bucket([]byte("timelines")).Bucket([]byte("empty")) != nil {
			t.Errorf("timelines after migration are not as the layout keeps them")
		}
		return nil
	})
}

// An incident's lists stay in it while they are short, move apart as
// they grow, and come back if they shrink; every reader gives the
// incident back as committed throughout.
func TestShortListsStayInTheIncident(t *testing.T) {
	// Reopening between commits checks where the lists are; without, the
	// store writes each commit as a delta of the one before.
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen=%v", reopen), func(t *testing.T) { shortListsStayInTheIncident(t, reopen) })
	}
}

func shortListsStayInTheIncident(t *testing.T, reopen bool) {
	s, path := openStore(t)
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	inc := incident("inc", base, hindsight.StatusOpen)
	grow := func(n int) {
		inc.Timeline, inc.Alerts = nil, nil
		for i := range n {
			at := base.Add(time.Duration(i) * time.Second)
			inc.Timeline = append(inc.Timeline, entry(fmt.Sprintf("e%03d", i), at, hindsight.KindAlertFiring))
			inc.Alerts = append(inc.Alerts, alert(fmt.Sprintf("f%03d", i), at))
		}
	}
	apart := func() (timeline, alerts bool) {
		t.Helper()
		s.Close()
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *bolt.Tx) error {
			timeline = tx.Bucket([]byte("timelines")).Bucket([]byte("inc")) != nil
			alerts = tx.Bucket([]byte("alerts")).Bucket([]byte("inc")) != nil
			return nil
		})
		db.Close()
		if s, err = boltstore.Open(path); err != nil {
			t.Fatal(err)
		}
		return timeline, alerts
	}
	t.Cleanup(func() { s.Close() })
	replaced := []string(nil)
	for _, c := range []struct {
		entries int
		apart   bool
	}{{3, false}, {20, false}, {200, true}, {210, true}, {10, false}, {100, true}, {101, true}, {5, false}} {
		grow(c.entries)
		if err := s.Commit(correlate.Change{Keys: []correlate.KeyChange{{Key: "checkout", Incidents: []hindsight.Incident{inc}, Replaced: replaced}}}); err != nil {
			t.Fatal(err)
		}
		replaced = []string{inc.ID}
		sameAsCommitted(t, s, inc)
		if !reopen {
			continue
		}
		if tl, al := apart(); tl != c.apart || al != c.apart {
			t.Errorf("%d entries: timeline apart %v, alerts apart %v; want %v", c.entries, tl, al, c.apart)
		}
		sameAsCommitted(t, s, inc)
	}
}
