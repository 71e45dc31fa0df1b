package boltstore

import (
	"hash/maphash"
	"reflect"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// Every field of a timeline entry and of an alert goes into its hash: a
// change the hash misses would not be written. A field added to either
// type fails this until the hash knows it.
func TestHashesCoverEveryField(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var h maphash.Hash
	h.SetSeed(maphash.MakeSeed())
	entry := hindsight.TimelineEntry{ID: "id", Time: at, Kind: hindsight.KindAlertFiring, Labels: map[string]string{"a": "b"}}
	checkFields(t, &entry, func() uint64 { return hashEntry(&h, &entry) })
	alert := hindsight.AlertSummary{Name: "n", StartsAt: at, Labels: map[string]string{"a": "b"}}
	checkFields(t, &alert, func() uint64 { return hashAlert(&h, &alert) })
	// A time in another zone is another JSON.
	before := hashEntry(&h, &entry)
	entry.Time = entry.Time.In(time.FixedZone("x", 3600))
	if hashEntry(&h, &entry) == before {
		t.Error("the hash misses a time's offset")
	}
}

// checkFields changes each field of *v in turn and checks that hash
// sees it.
func checkFields(t *testing.T, v any, hash func() uint64) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		old := reflect.New(f.Type()).Elem()
		old.Set(f)
		before := hash()
		switch x := f.Addr().Interface().(type) {
		case *string:
			*x += "x"
		case *hindsight.Kind:
			*x += "x"
		case *hindsight.Source:
			*x += "x"
		case *bool:
			*x = !*x
		case *time.Time:
			*x = x.Add(time.Nanosecond)
		case **time.Time:
			at := time.Unix(1, 0)
			*x = &at
		case *map[string]string:
			*x = map[string]string{"a": "c"}
		default:
			t.Fatalf("%s.%s: a field of type %s the test does not know", rv.Type(), rv.Type().Field(i).Name, f.Type())
		}
		if hash() == before {
			t.Errorf("%s.%s: the hash does not change with it", rv.Type(), rv.Type().Field(i).Name)
		}
		f.Set(old)
	}
}
