package boltstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

// List's filters give the same pages whether by_start says each
// incident's status and service or not (a file written before it did),
// and a filter that leaves an incident out does not read it.
func TestListFilters(t *testing.T) {
	s, path := openStore(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	statuses := []hindsight.Status{hindsight.StatusOpen, hindsight.StatusResolved, hindsight.StatusPending, hindsight.StatusSuppressed}
	var all []hindsight.Incident
	byKey := map[string][]hindsight.Incident{}
	for i := range 40 {
		inc := incident(fmt.Sprintf("inc-%02d", i), base.Add(time.Duration(i)*time.Hour), statuses[i%len(statuses)])
		inc.Service = []string{"checkout", "payments", "search"}[i%3]
		inc.Key = inc.Service
		all = append(all, inc)
		byKey[inc.Key] = append(byKey[inc.Key], inc)
	}
	var change correlate.Change
	for key, incs := range byKey {
		change.Keys = append(change.Keys, correlate.KeyChange{Key: key, Incidents: incs})
	}
	if err := s.Commit(change); err != nil {
		t.Fatal(err)
	}
	type query struct {
		status  hindsight.Status
		service string
	}
	var queries []query
	for _, st := range append([]hindsight.Status{""}, statuses...) {
		for _, svc := range []string{"", "checkout", "payments", "nobody"} {
			queries = append(queries, query{st, svc})
		}
	}
	want := func(q query) []string {
		var ids []string
		for _, inc := range slices.Backward(all) {
			if (q.status == "" && inc.Status.Opened() || inc.Status == q.status) && (q.service == "" || inc.Service == q.service) {
				ids = append(ids, inc.ID)
			}
		}
		return ids
	}
	check := func(t *testing.T, s *boltstore.Store) {
		t.Helper()
		for _, q := range queries {
			var got []string
			cursor := ""
			for {
				page, next, err := s.List(ctx, boltstore.ListOptions{Status: q.status, Service: q.service, Limit: 3, Cursor: cursor})
				if err != nil {
					t.Fatalf("List(%+v): %v", q, err)
				}
				for _, inc := range page {
					got = append(got, inc.ID)
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if w := want(q); !slices.Equal(got, w) {
				t.Errorf("List(status %q, service %q) = %v; want %v", q.status, q.service, got, w)
			}
		}
	}
	check(t, s)

	// A filter that leaves an incident out does not decode it: damage
	// the head of one that no payments list holds.
	s.Close()
	damage := func(f func(tx *bolt.Tx) error) {
		t.Helper()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(f); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	damage(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("incidents")).Put([]byte("inc-00"), []byte("not JSON"))
	})
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.List(ctx, boltstore.ListOptions{Service: "payments", Limit: 100}); err != nil {
		t.Errorf("List of payments read the damaged checkout incident: %v", err)
	}
	if _, _, err := s.List(ctx, boltstore.ListOptions{Service: "checkout", Limit: 100}); err == nil {
		t.Errorf("List of checkout gave no error for its damaged incident")
	}
	s.Close()

	// A file whose by_start entries are empty, as before they said more:
	// the same pages, from the incidents themselves.
	damage(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("incidents")).Put([]byte("inc-00"), []byte(mustJSON(t, all[0]))); err != nil {
			return err
		}
		b := tx.Bucket([]byte("by_start"))
		var keys [][]byte
		b.ForEach(func(k, _ []byte) error { keys = append(keys, slices.Clone(k)); return nil })
		for _, k := range keys {
			if err := b.Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if s, err = boltstore.Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(t, s)
}
