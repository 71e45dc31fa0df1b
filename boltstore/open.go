package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrNeedsRebuild is wrapped by Open's error when the file cannot be used
// (damaged, or written by another schema) and must be rebuilt from the
// event stream.
var ErrNeedsRebuild = errors.New("the state file must be rebuilt from the event stream")

// lockTimeout is how long Open waits for another process to let go of
// the file.
const lockTimeout = 5 * time.Second

// unusableError says why a state file cannot be used and how to rebuild
// it. It matches ErrNeedsRebuild.
type unusableError struct {
	path    string
	problem string
	// damaged: the file is broken, rather than from another version.
	damaged bool
}

func (e *unusableError) Error() string {
	how := fmt.Sprintf("It holds nothing the event stream does not: move it aside and run `%s` (with the --config and --nats-url you serve with) to refold it from the stream.", RebuildCommand(e.path))
	if !e.damaged {
		return fmt.Sprintf("state file %s cannot be used: %s. Run the Hindsight that wrote it, or rebuild it for this one. %s", e.path, e.problem, how)
	}
	return fmt.Sprintf("state file %s is damaged: %s. %s", e.path, e.problem, how)
}

func (e *unusableError) Is(target error) bool { return target == ErrNeedsRebuild }

func damaged(path, format string, args ...any) error {
	return &unusableError{path: path, problem: fmt.Sprintf(format, args...), damaged: true}
}

// RebuildCommand is the command that rebuilds the state file at path
// from the event stream.
func RebuildCommand(path string) string {
	dir := filepath.Dir(path)
	cmd := "hindsight rebuild --data-dir " + shellQuote(dir)
	if filepath.Base(path) != FileName {
		cmd += " --out " + shellQuote(path)
	}
	return cmd
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%,=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Open opens the state file at path, creating it if it does not exist,
// and checks it before anything trusts it: both meta pages, the file
// size against the last transaction's high-water mark, the structure of
// every page in use (without mapping it; see checkFile), the buckets and
// the schema version. A file that fails any of these gives an error that
// names it, says what is wrong and how to rebuild it, and matches
// ErrNeedsRebuild; a panic inside bbolt while opening is recovered into
// the same error.
//
// A file that does not exist or is empty is a new, empty state (bbolt
// writes its first pages into an empty file, and an empty file is what a
// crash right after creating it leaves). The correlator then folds the
// stream from its first event, so the state comes back by itself.
func Open(path string) (*Store, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("open %s: not a regular file", path)
	case err == nil && fi.Size() > 0:
		if err := check(path); err != nil {
			return nil, err
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := openBolt(path, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, err
	}
	if err := initOrCheckLayout(path, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, path: path, seed: maphash.MakeSeed(), written: map[string]*writtenLists{}}, nil
}

// check verifies an existing file while holding a shared lock on it, so
// that no other Hindsight writes it meanwhile.
func check(path string) error {
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkPath(path); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("check %s: %w", path, err)
		}
		return damaged(path, "%v", err)
	}
	return nil
}

// openBolt is bolt.Open with a fault or panic turned into an error.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, damaged(path, "bbolt failed reading it (%v)", r)
		}
	}()
	db, err = bolt.Open(path, 0o600, o)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open %s: another process holds it (is another Hindsight running on this data directory?)", path)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// bbolt refused it (ErrInvalid, ErrChecksum, ErrVersionMismatch, a
	// file too short): say precisely why when the check can.
	if cerr := checkPath(path); cerr != nil {
		var pe *fs.PathError
		if !errors.As(cerr, &pe) {
			return nil, damaged(path, "%v", cerr)
		}
	}
	return nil, damaged(path, "bbolt cannot open it (%v)", err)
}

// initOrCheckLayout gives a new file its buckets and schema version, and
// checks that an existing one has them.
func initOrCheckLayout(path string, db *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(path, "bbolt failed reading it (%v)", r)
		}
	}()
	empty := true
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error {
			empty = false
			return errStop
		})
	})
	if err != nil && !errors.Is(err, errStop) {
		return damaged(path, "its root bucket cannot be read (%v)", err)
	}
	if empty {
		return db.Update(func(tx *bolt.Tx) error {
			for _, b := range buckets {
				if _, err := tx.CreateBucket(b); err != nil {
					return fmt.Errorf("initialise %s: %w", path, err)
				}
			}
			return tx.Bucket(bucketMeta).Put(keySchema, []byte(schemaVersion))
		})
	}
	if err := migrate(db); err != nil {
		return damaged(path, "it cannot be migrated from schema version 2 (%v)", err)
	}
	return db.View(func(tx *bolt.Tx) error {
		var missing []string
		for _, b := range buckets {
			if tx.Bucket(b) == nil {
				missing = append(missing, string(b))
			}
		}
		if len(missing) > 0 {
			return damaged(path, "it lacks the buckets %s (it is not a Hindsight state file, or it lost them)", strings.Join(missing, ", "))
		}
		switch v := tx.Bucket(bucketMeta).Get(keySchema); {
		case v == nil:
			return damaged(path, "it has no schema version")
		case string(v) != schemaVersion:
			return &unusableError{path: path, problem: fmt.Sprintf("it has schema version %q and this Hindsight reads %q", v, schemaVersion)}
		}
		if v := tx.Bucket(bucketMeta).Get(keySeq); v != nil && len(v) != 8 {
			return damaged(path, "its stream position is %d bytes long, not 8", len(v))
		}
		// Every key has its two sub-buckets: the reads assume them.
		keys := tx.Bucket(bucketKeys)
		return keys.ForEachBucket(func(k []byte) error {
			kb := keys.Bucket(k)
			if kb.Bucket(subEvents) == nil || kb.Bucket(subNotes) == nil || kb.Bucket(subIncidents) == nil || kb.Bucket(subSpans) == nil {
				return damaged(path, "key %q lacks its events, notes, incidents or spans bucket", k)
			}
			return nil
		})
	})
}

var errStop = errors.New("stop")

// migrate brings a file of schema version 2 to this one, in one
// transaction: each incident's timeline entries and alerts move out of
// its JSON into the sub-buckets of timelines and alerts (see layout). A
// file of any other version is left to the checks.
func migrate(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || string(meta.Get(keySchema)) != "2" {
			return nil
		}
		incs := tx.Bucket(bucketIncidents)
		if incs == nil {
			return nil // the checks say what is missing
		}
		for _, b := range [][]byte{bucketTimelines, bucketAlerts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		var ids [][]byte
		if err := incs.ForEach(func(k, _ []byte) error {
			ids = append(ids, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		timelines, alerts := tx.Bucket(bucketTimelines), tx.Bucket(bucketAlerts)
		for _, id := range ids {
			inc, err := decodeIncident(incs.Get(id))
			if err != nil {
				return fmt.Errorf("incident %s: %w", id, err)
			}
			e, err := encodeIncident(inc)
			if err != nil {
				return fmt.Errorf("incident %s: %w", id, err)
			}
			if err := incs.Put(id, e.head); err != nil {
				return err
			}
			if err := putList(timelines, id, e.timeline); err != nil {
				return err
			}
			if err := putList(alerts, id, e.alerts); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, []byte(schemaVersion))
	})
}
