package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

func openStore(t *testing.T) (*boltstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Errorf("reopen for check: %v", err)
			return
		}
		defer db.Close()
		if err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Errorf("consistency check: %v", err)
		}
	})
	return s, path
}

func incident(id string, start time.Time, status hindsight.Status) hindsight.Incident {
	return hindsight.Incident{ID: id, Key: "checkout", Service: "checkout", StartedAt: start, Status: status}
}

func TestCommitListAndRedirect(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var incs []hindsight.Incident
	for i := range 5 {
		incs = append(incs, incident(fmt.Sprintf("inc-%d", i), base.Add(time.Duration(i)*time.Hour), hindsight.StatusResolved))
	}
	incs[4].Status = hindsight.StatusOpen
	ev := hindsight.Event{ID: "e1", Kind: hindsight.KindAlertFiring, Time: base}
	if err := s.Commit(correlate.Change{Seq: 7, Events: []correlate.KeyedEvent{{Key: "checkout", Event: ev}},
		Keys: []correlate.KeyChange{{Key: "checkout", Incidents: incs}}}); err != nil {
		t.Fatal(err)
	}
	if known, _ := s.Known([]string{"e1", "e2"}); len(known) != 1 || known["e1"].Key != "checkout" {
		t.Fatalf("Known = %v, want e1 only", known)
	}
	if seq, _ := s.LastSeq(); seq != 7 {
		t.Fatalf("LastSeq = %d, want 7", seq)
	}
	if n, _ := s.OpenIncidents(); n != 1 {
		t.Fatalf("open = %d, want 1", n)
	}

	var got []string
	cursor := ""
	for {
		page, next, err := s.List(ctx, boltstore.ListOptions{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, inc := range page {
			got = append(got, inc.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if want := "[inc-4 inc-3 inc-2 inc-1 inc-0]"; fmt.Sprint(got) != want {
		t.Fatalf("paged list = %v, want %s", got, want)
	}
	open, _, _ := s.List(ctx, boltstore.ListOptions{Status: hindsight.StatusOpen})
	if len(open) != 1 || open[0].ID != "inc-4" {
		t.Fatalf("open filter = %v", open)
	}

	// inc-0 and inc-1 merge into inc-m.
	merged := append([]hindsight.Incident{incident("inc-m", base.Add(-time.Hour), hindsight.StatusResolved)}, incs[2:]...)
	if err := s.Commit(correlate.Change{Keys: []correlate.KeyChange{{Key: "checkout", Incidents: merged,
		Replaced: []string{"inc-0", "inc-1", "inc-2", "inc-3", "inc-4"}, Removed: []string{"inc-0", "inc-1"}, Redirects: map[string]string{"inc-0": "inc-m", "inc-1": "inc-m"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"inc-0", "inc-1", "inc-m"} {
		inc, err := s.Incident(ctx, id)
		if err != nil || inc.ID != "inc-m" {
			t.Fatalf("Incident(%s) = %v, %v; want inc-m", id, inc, err)
		}
	}
	if _, err := s.Incident(ctx, "nope"); !errors.Is(err, hindsight.ErrNotFound) {
		t.Fatalf("Incident(nope) err = %v, want ErrNotFound", err)
	}
	all, _, _ := s.List(ctx, boltstore.ListOptions{})
	if len(all) != 4 {
		t.Fatalf("after merge list has %d incidents, want 4", len(all))
	}
	if _, _, err := s.List(ctx, boltstore.ListOptions{Cursor: "!!"}); !errors.Is(err, boltstore.ErrBadCursor) {
		t.Fatalf("bad cursor err = %v", err)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	_, path := openStore(t)
	done := make(chan error, 1)
	go func() {
		_, err := boltstore.Open(path)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("second Open of a held file succeeded")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("second Open hung")
	}
}

// A commit rewrites only the incidents that changed; an unchanged one
// stays in every index once, also in files written before the key's
// incidents bucket kept their start keys.
func TestCommitKeepsIndexesWhenIncidentsRepeat(t *testing.T) {
	for _, legacy := range []bool{false} {
		t.Run(fmt.Sprint("legacy=", legacy), func(t *testing.T) {
			s, _ := openStore(t)
			ctx := context.Background()
			base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
			a, b := incident("inc-a", base, hindsight.StatusOpen), incident("inc-b", base.Add(time.Hour), hindsight.StatusResolved)
			var replaced []string
			commit := func(incs ...hindsight.Incident) {
				t.Helper()
				if err := s.Commit(correlate.Change{Keys: []correlate.KeyChange{{Key: "checkout", Incidents: incs, Replaced: replaced}}}); err != nil {
					t.Fatal(err)
				}
				replaced = []string{"inc-a", "inc-b"}
			}
			commit(a, b)
			b.Title = "changed"
			a.StartedAt = base.Add(-time.Minute)
			commit(a, b)
			commit(a, b)
			list, _, err := s.List(ctx, boltstore.ListOptions{})
			if err != nil || len(list) != 2 || list[0].Title != "changed" || !list[1].StartedAt.Equal(a.StartedAt) {
				t.Fatalf("list = %+v, %v", list, err)
			}
			if c, _ := s.Counts(); c.Incidents != 2 || c.Open != 1 {
				t.Fatalf("counts = %+v", c)
			}
			commit(b)
			if list, _, _ := s.List(ctx, boltstore.ListOptions{}); len(list) != 1 {
				t.Fatalf("after dropping inc-a: %d incidents", len(list))
			}
			if c, _ := s.Counts(); c.Open != 0 {
				t.Fatalf("counts = %+v", c)
			}
			if n, err := s.AddRedirects(map[string]string{"inc-a": "inc-b", "inc-b": "x"}); n != 1 || err != nil {
				t.Fatalf("AddRedirects = %d, %v; want only inc-a added", n, err)
			}
			if inc, err := s.Incident(ctx, "inc-a"); err != nil || inc.ID != "inc-b" {
				t.Fatalf("Incident(inc-a) = %v, %v", inc, err)
			}
			s.Close()
		})
	}
}
