package boltstore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hindsight-sre/hindsight/boltstore"
)

// TestCheckCost measures the checks Open runs on a file of
// HINDSIGHT_CHECK_EVENTS events (skipped when unset), folded in batches of
// HINDSIGHT_CHECK_BATCH (default 256, as the live correlator), against
// bbolt's tx.Check:
//
//	HINDSIGHT_CHECK_EVENTS=100000 HINDSIGHT_CHECK_BATCH=5000 go test -run TestCheckCost -v -timeout 1h ./boltstore/
func TestCheckCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HINDSIGHT_CHECK_EVENTS"))
	if n <= 0 {
		t.Skip("set HINDSIGHT_CHECK_EVENTS to measure")
	}
	batch, _ := strconv.Atoi(os.Getenv("HINDSIGHT_CHECK_BATCH"))
	if batch <= 0 {
		batch = 256
	}
	path := filepath.Join(t.TempDir(), boltstore.FileName)
	start := time.Now()
	populate(t, path, n, 50, batch)
	fi, _ := os.Stat(path)
	t.Logf("folded %d events in batches of %d into %s in %s: %d bytes", n, batch, path, time.Since(start).Round(time.Millisecond), fi.Size())

	for round := range 3 {
		start = time.Now()
		if err := boltstore.CheckPath(path); err != nil {
			t.Fatal(err)
		}
		structural := time.Since(start)

		start = time.Now()
		s, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		open := time.Since(start)
		s.Close()

		start = time.Now()
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		err = db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		txCheck := time.Since(start)

		start = time.Now()
		db, err = bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		plain := time.Since(start)
		t.Logf("round %d: structural check %s, boltstore.Open (with it) %s, tx.Check %s, plain bolt.Open %s",
			round, structural.Round(time.Microsecond), open.Round(time.Microsecond), txCheck.Round(time.Microsecond), plain.Round(time.Microsecond))
	}
}
