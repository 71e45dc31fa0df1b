package boltstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/internal/eventgen"
)

// A bulk load holds the event index entries and writes them in key
// order: the same commits give the same answers as the plain store,
// while the entries are held and once they are written, and the same
// file once closed.
func TestBulkLoadAnswersAsIfWritten(t *testing.T) {
	ctx := context.Background()
	evs := eventgen.Events(3000, 7)
	// As a stream has them: redeliveries, and an earlier copy of an event.
	early := evs[100]
	early.ReceivedAt = early.ReceivedAt.Add(-10 * time.Second)
	var batches [][]hindsight.Event
	for i := 0; i < len(evs); i += 250 {
		batches = append(batches, evs[i:min(i+250, len(evs))])
	}
	batches = append(batches, evs[200:400])
	last := []hindsight.Event{early, evs[2999]} // after Counts: held until Close
	ids := []string{"not-an-event"}
	for _, e := range evs {
		ids = append(ids, e.ID)
	}

	dir := t.TempDir()
	open := func(name string, bulk bool) (*boltstore.Store, *correlate.Correlator) {
		s, err := boltstore.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bulk {
			s.BulkLoad(700) // a write every third batch, entries held between
		}
		c, err := correlate.New(correlate.DefaultConfig(), s, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	plain, pc := open("plain.db", false)
	bulk, bc := open("bulk.db", true)
	same := func(when string) {
		t.Helper()
		kp, err := plain.Known(ids)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := bulk.Known(ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(kp) == 0 || !reflect.DeepEqual(kp, kb) {
			t.Fatalf("%s: the bulk load knows %d events, the plain store %d, or they differ", when, len(kb), len(kp))
		}
		for _, id := range []string{evs[0].ID, evs[100].ID, evs[2999].ID} {
			p1, err1 := plain.EventPlace(ctx, id)
			p2, err2 := bulk.EventPlace(ctx, id)
			if (err1 == nil) != (err2 == nil) || (err1 != nil && !errors.Is(err1, hindsight.ErrNotFound)) || p1 != p2 {
				t.Fatalf("%s: place of %s: %+v (%v) in the plain store, %+v (%v) in the bulk load", when, id, p1, err1, p2, err2)
			}
		}
	}
	for i, b := range batches {
		if err := pc.Apply(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		if err := bc.Apply(ctx, b, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("after batch %d", i+1))
	}
	cp, err := plain.Counts()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := bulk.Counts()
	if err != nil || cp != cb || cp.Events != len(evs) {
		t.Fatalf("counts: %+v in the plain store, %+v (%v) in the bulk load; want %d events", cp, cb, err, len(evs))
	}
	seq := uint64(len(batches) + 1)
	if err := pc.Apply(ctx, last, seq); err != nil {
		t.Fatal(err)
	}
	if err := bc.Apply(ctx, last, seq); err != nil {
		t.Fatal(err)
	}
	same("after the last batch")
	for _, s := range []*boltstore.Store{plain, bulk} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	plain, _ = open("plain.db", false)
	bulk, _ = open("bulk.db", false)
	defer plain.Close()
	defer bulk.Close()
	same("reopened")
	lp, _, err := plain.List(ctx, boltstore.ListOptions{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	lb, _, err := bulk.List(ctx, boltstore.ListOptions{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	jp, _ := json.Marshal(lp)
	jb, _ := json.Marshal(lb)
	if len(lp) == 0 || string(jp) != string(jb) {
		t.Fatalf("incidents differ: %d in the plain store, %d in the bulk load", len(lp), len(lb))
	}
}
