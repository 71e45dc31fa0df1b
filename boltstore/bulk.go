package boltstore

import (
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// DefaultIndexHeld is how many event index entries BulkLoad holds in
// memory before it writes them: about 45 MB.
const DefaultIndexHeld = 250_000

// heldIndex is the event index entries a bulk load has committed but not
// yet written, by event ID.
type heldIndex struct {
	mu      sync.Mutex
	limit   int
	entries map[string][]byte
}

// BulkLoad prepares the store for a file written from scratch and used
// only once it is whole (a rebuild's): commits skip their fsync until
// Close, which syncs once (Unsynced), and the event index entries of each
// commit are held in memory and written in key order, held at a time
// (DefaultIndexHeld if held is 0 or less), and by Counts and Close.
//
// The event index is keyed by the events' hashes: written as the
// commits come, each commit of thousands of events rewrites pages all
// over an index that grows to a hundred megabytes, which was 40% of the
// time a rebuild of a million events took. Written in key order, each
// page is written once per flush.
//
// The entries held answer Known and EventPlace as if written. A crash
// loses them, as it loses the unsynced commits: the file is thrown away.
// Never for the live state.
func (s *Store) BulkLoad(held int) {
	s.Unsynced()
	if held <= 0 {
		held = DefaultIndexHeld
	}
	s.held = &heldIndex{limit: held, entries: make(map[string][]byte, min(held, 1<<16))}
}

// hold records a committed transaction's index entries, in the order
// they were put; it writes all held once there are limit of them.
func (s *Store) hold(entries []indexPut) error {
	h := s.held
	h.mu.Lock()
	for _, e := range entries {
		h.entries[e.id] = e.value
	}
	full := len(h.entries) >= h.limit
	h.mu.Unlock()
	if full {
		return s.flushIndex()
	}
	return nil
}

// heldEntries returns the index entries held for ids (nil when none
// are held).
func (s *Store) heldEntries(ids []string) map[string][]byte {
	h := s.held
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out map[string][]byte
	for _, id := range ids {
		if v, ok := h.entries[id]; ok {
			if out == nil {
				out = map[string][]byte{}
			}
			out[id] = v
		}
	}
	return out
}

// flushIndex writes the held index entries in key order, in one
// transaction, and forgets them.
func (s *Store) flushIndex() error {
	h := s.held
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.entries) == 0 {
		return nil
	}
	ids := make([]string, 0, len(h.entries))
	for id := range h.entries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	err := s.db.Update(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketEventIndex)
		for _, id := range ids {
			if err := idx.Put([]byte(id), h.entries[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %d held event index entries: %w", len(ids), err)
	}
	clear(h.entries)
	return nil
}

// indexPut is one entry for the event index.
type indexPut struct {
	id    string
	value []byte
}
