package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/internal/jsonwire"
)

var (
	bucketMeta       = []byte("meta")
	bucketEventIndex = []byte("event_index") // event ID -> key
	bucketKeys       = []byte("keys")        // key -> {events: time|id -> event, incidents: id -> ""}
	bucketIncidents  = []byte("incidents")   // id -> incident JSON, without what timelines and alerts keep
	bucketTimelines  = []byte("timelines")   // id -> {entryKey -> timeline entry JSON}
	bucketAlerts     = []byte("alerts")      // id -> {alertKey -> alert JSON}
	bucketByStart    = []byte("by_start")    // start|id -> ""
	bucketOpen       = []byte("open")        // id -> ""
	bucketRedirects  = []byte("redirects")   // old id -> new id
	bucketDeploys    = []byte("deploys")     // time|id -> deploy event
	bucketPending    = []byte("pending")     // id -> opens_at|start|key of a pending incident

	subEvents    = []byte("events")    // alert events: time|id -> event
	subNotes     = []byte("notes")     // note events: time|id -> event
	subIncidents = []byte("incidents") // id -> start|id (its by_start and spans key)
	subSpans     = []byte("spans")     // start|id -> end (FarFuture while open)

	keySeq    = []byte("last_seq")
	keySchema = []byte("schema")
	keyClock  = []byte("watermark")
)

// schemaVersion 2: deploys kept apart by time (for Enrich), open_after's
// pending keys and the event-time watermark. 3: an incident's timeline
// entries and alerts kept apart from it, one value each (see layout);
// Open migrates a file of schema 2 in place.
const schemaVersion = "3"

// FileName is the state file's name in the data directory.
const FileName = "hindsight.db"

// buckets are the top-level buckets every state file has.
var buckets = [][]byte{bucketMeta, bucketEventIndex, bucketKeys, bucketIncidents, bucketTimelines, bucketAlerts, bucketByStart, bucketOpen, bucketRedirects, bucketDeploys, bucketPending}

// Store is the bbolt file.
type Store struct {
	db   *bolt.DB
	path string

	// mu serialises Commit and guards written.
	mu   sync.Mutex
	seed maphash.Seed
	// written is what the sub-buckets of open and pending incidents
	// hold, as Commit last wrote them: a hash of each entry by key. A
	// commit then encodes and writes only the entries whose hash
	// changed, and deletes those gone, instead of encoding the whole list
	// and comparing it with the stored one.
	written map[string]*writtenLists
	// held is the event index entries a bulk load has not yet written
	// (BulkLoad); nil otherwise.
	held *heldIndex
}

// writtenLists are the entry hashes of an incident's lists kept apart,
// by key; nil for a list the head keeps.
type writtenLists struct{ timeline, alerts map[string]uint64 }

var _ correlate.Store = (*Store)(nil)

// Discard closes the file without writing the index entries a bulk load
// holds or syncing it: for a file about to be removed.
func (s *Store) Discard() error {
	s.held = nil
	return s.db.Close()
}

// Close closes the file.
func (s *Store) Close() error {
	if err := s.flushIndex(); err != nil {
		s.db.Close()
		return err
	}
	if s.db.NoSync {
		if err := s.db.Sync(); err != nil {
			s.db.Close()
			return fmt.Errorf("sync %s: %w", s.path, err)
		}
	}
	return s.db.Close()
}

// Unsynced makes commits skip their fsync until Close, which syncs once,
// and skips bbolt's step when the file grows (a truncate to the new size
// and an fsync; bbolt's NoGrowSync, which its docs call unsafe on ext4
// because the new size may not be durable): for a file written from
// scratch and used only once it is whole (a rebuild's), where a crash
// loses nothing that matters because the file is thrown away, and
// Close's fdatasync makes the data and the size durable before anyone
// uses it. Never for the live state: a commit must be on disk before the
// stream is acknowledged.
func (s *Store) Unsynced() { s.db.NoSync, s.db.NoGrowSync = true, true }

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Ready reports whether the file can be read.
func (s *Store) Ready() error {
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("state file has no meta bucket")
		}
		return nil
	})
}

// Known implements correlate.Store.
func (s *Store) Known(ids []string) (map[string]correlate.Stored, error) {
	known := make(map[string]correlate.Stored, len(ids))
	// Before the transaction: a flush of the held entries holds their
	// lock while it waits for readers to let bbolt grow the file.
	held := s.heldEntries(ids)
	err := s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketEventIndex)
		for _, id := range ids {
			v, ok := held[id]
			if !ok {
				v = idx.Get([]byte(id))
			}
			if v == nil {
				continue
			}
			if len(v) < 16 {
				return fmt.Errorf("event index entry of %s is damaged", id)
			}
			known[id] = correlate.Stored{Time: keyTime(v), ReceivedAt: keyTime(v[8:]), Key: string(v[16:])}
		}
		return nil
	})
	return known, err
}

// indexEntry is what the event index keeps of an event: its time and
// receipt (to tell which copy counts) and its key.
func indexEntry(e *hindsight.Event, key string) []byte {
	return append(timeKey(e.Time, ""), timeKey(e.ReceivedAt, key)...)
}

// KeyEvents implements correlate.Store.
func (s *Store) KeyEvents(key string, from, to time.Time) ([]hindsight.Event, error) {
	var out []hindsight.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket(bucketKeys).Bucket([]byte(key))
		if kb == nil {
			return nil
		}
		decode := func(k, v []byte) error {
			var e hindsight.Event
			if err := jsonwire.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event %x of key %q: %w", k, key, err)
			}
			out = append(out, e)
			return nil
		}
		c := kb.Bucket(subEvents).Cursor()
		end := timeKey(to, "\xff")
		for k, v := c.Seek(timeKey(from, "")); k != nil && bytes.Compare(k, end) <= 0; k, v = c.Next() {
			if err := decode(k, v); err != nil {
				return err
			}
		}
		return kb.Bucket(subNotes).ForEach(decode)
	})
	return out, err
}

// KeySpans implements correlate.Store.
func (s *Store) KeySpans(key string, from, to time.Time) ([]correlate.Span, error) {
	var out []correlate.Span
	err := s.db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket(bucketKeys).Bucket([]byte(key))
		if kb == nil {
			return nil
		}
		// Spans of one key do not overlap, so ends grow with starts: the
		// span before from is the only earlier one that can reach it.
		c := kb.Bucket(subSpans).Cursor()
		k, v := c.Seek(timeKey(from, ""))
		if pk, pv := c.Prev(); pk != nil {
			k, v = pk, pv
		} else {
			k, v = c.First()
		}
		last := timeKey(to, "\xff")
		for ; k != nil && bytes.Compare(k, last) <= 0; k, v = c.Next() {
			sp, err := decodeSpan(key, k, v)
			if err != nil {
				return err
			}
			if !sp.End.Before(from) {
				out = append(out, sp)
			}
		}
		return nil
	})
	return out, err
}

// A span's value: its end, its status's length and status, its anchor.
func encodeSpan(sp correlate.Span) []byte {
	v := append(timeKey(sp.End, ""), byte(len(sp.Status)))
	return append(append(v, sp.Status...), sp.Anchor...)
}

func decodeSpan(key string, k, v []byte) (correlate.Span, error) {
	if len(k) < 8 || len(v) < 9 || len(v) < 9+int(v[8]) {
		return correlate.Span{}, fmt.Errorf("key %q: span %x is damaged", key, k)
	}
	n := 9 + int(v[8])
	return correlate.Span{ID: string(k[8:]), Key: key, Start: keyTime(k), End: keyTime(v),
		Status: hindsight.Status(v[9:n]), Anchor: string(v[n:])}, nil
}

// Commit implements correlate.Store: events, incidents, redirects and the
// stream position, in one transaction (under BulkLoad the event index
// entries are held and written later, and an error writing them comes
// after the transaction committed).
func (s *Store) Commit(c correlate.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc, err := s.encode(c, s.written)
	if err != nil {
		return err
	}
	err = s.commit(c, enc)
	if errors.Is(err, errStale) {
		// A list written as a change to what it held is not there: do
		// it again from the stored lists.
		s.written = map[string]*writtenLists{}
		if enc, err = s.encode(c, nil); err != nil {
			return err
		}
		err = s.commit(c, enc)
	}
	if err != nil {
		s.written = map[string]*writtenLists{}
		return err
	}
	s.remember(c, enc)
	return nil
}

// remember records the lists a commit wrote, for the open and pending
// incidents: the ones that grow.
func (s *Store) remember(c correlate.Change, enc encoded) {
	for i, kc := range c.Keys {
		for _, id := range kc.Replaced {
			delete(s.written, id)
		}
		for j := range kc.Incidents {
			inc, e := &kc.Incidents[j], &enc.incidents[i][j]
			if inc.Status != hindsight.StatusOpen && inc.Status != hindsight.StatusPending {
				delete(s.written, inc.ID)
				continue
			}
			s.written[inc.ID] = &writtenLists{timeline: e.timeline.written(), alerts: e.alerts.written()}
		}
	}
	if len(s.written) > maxWritten {
		s.written = map[string]*writtenLists{}
	}
}

// maxWritten bounds the incidents Store.written keeps.
const maxWritten = 10_000

// errStale: a list to change is not in the file (see Store.written).
var errStale = errors.New("a list kept apart is not where the last commit left it")

func (s *Store) commit(c correlate.Change, enc encoded) error {
	var staged []indexPut
	err := s.db.Update(func(tx *bolt.Tx) error {
		idx, keys := tx.Bucket(bucketEventIndex), tx.Bucket(bucketKeys)
		staged = staged[:0]
		putIndex := func(id string, v []byte) error {
			if s.held != nil {
				staged = append(staged, indexPut{id, v})
				return nil
			}
			return idx.Put([]byte(id), v)
		}
		deploys := tx.Bucket(bucketDeploys)
		// Keys by time mostly grow at the end: fill their pages up
		// (bbolt's default, half, suits keys that land anywhere).
		deploys.FillPercent = appendFill
		for i, ke := range c.Deploys {
			d := &ke.Event
			data := enc.deploys[i]
			if r := ke.Replaces; r != nil {
				if err := deploys.Delete(timeKey(r.Time, d.ID)); err != nil {
					return err
				}
			}
			if err := deploys.Put(timeKey(d.Time, d.ID), data); err != nil {
				return err
			}
			if err := putIndex(d.ID, indexEntry(d, "")); err != nil {
				return err
			}
		}
		for i, ke := range c.Events {
			if r := ke.Replaces; r != nil && r.Key != "" {
				// An earlier copy of an event the store keeps: it takes
				// the old one's place.
				if kb := keys.Bucket([]byte(r.Key)); kb != nil {
					for _, sub := range [][]byte{subEvents, subNotes} {
						if err := kb.Bucket(sub).Delete(timeKey(r.Time, ke.Event.ID)); err != nil {
							return err
						}
					}
				}
			}
			if ke.Key == "" {
				// Ignored by a rule: known, so a repeat is a duplicate;
				// the stream keeps it for a replay under other rules.
				if err := putIndex(ke.Event.ID, indexEntry(&ke.Event, "")); err != nil {
					return err
				}
				continue
			}
			kb, err := keyBucket(keys, ke.Key)
			if err != nil {
				return err
			}
			data := enc.events[i]
			sub := subEvents
			if ke.Event.Note != nil || ke.Event.Human != nil {
				sub = subNotes
			}
			b := kb.Bucket(sub)
			b.FillPercent = appendFill
			if err := b.Put(timeKey(ke.Event.Time, ke.Event.ID), data); err != nil {
				return err
			}
			if err := putIndex(ke.Event.ID, indexEntry(&ke.Event, ke.Key)); err != nil {
				return err
			}
		}
		for i, kc := range c.Keys {
			if err := s.replaceKey(tx, kc, enc.incidents[i]); err != nil {
				return fmt.Errorf("store incidents of %q: %w", kc.Key, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if old := meta.Get(keyClock); !c.Watermark.IsZero() && (len(old) != 8 || bytes.Compare(timeKey(c.Watermark, ""), old) > 0) {
			if err := meta.Put(keyClock, timeKey(c.Watermark, "")); err != nil {
				return err
			}
		}
		// A late redelivery carries an older sequence: the stream
		// position only moves forward.
		if v := meta.Get(keySeq); c.Seq > 0 && (len(v) != 8 || binary.BigEndian.Uint64(v) < c.Seq) {
			return meta.Put(keySeq, binary.BigEndian.AppendUint64(nil, c.Seq))
		}
		return nil
	})
	if err != nil || s.held == nil {
		return err
	}
	return s.hold(staged)
}

// encoded is a Change's JSON, made before the write transaction, on
// every core: encoding is most of a commit's work, and the transaction
// itself runs on one.
type encoded struct {
	deploys, events [][]byte
	incidents       [][]encodedIncident // per KeyChange
}

// encode encodes c. With written, the lists of the incidents it knows
// are encoded as changes to what the file holds; without, whole.
func (s *Store) encode(c correlate.Change, written map[string]*writtenLists) (encoded, error) {
	e := encoded{deploys: make([][]byte, len(c.Deploys)), events: make([][]byte, len(c.Events)), incidents: make([][]encodedIncident, len(c.Keys))}
	type job struct {
		v   any
		out *[]byte
		id  string
	}
	var jobs []job
	for i := range c.Deploys {
		jobs = append(jobs, job{&c.Deploys[i].Event, &e.deploys[i], c.Deploys[i].Event.ID})
	}
	for i := range c.Events {
		jobs = append(jobs, job{&c.Events[i].Event, &e.events[i], c.Events[i].Event.ID})
	}
	// An incident that comes twice in this change, or that one of its
	// keys drops while another keeps it, is written whole: the delta
	// assumes the file holds what the last commit wrote.
	count, whole := map[string]int{}, map[string]bool{}
	for _, kc := range c.Keys {
		for j := range kc.Incidents {
			count[kc.Incidents[j].ID]++
		}
	}
	for _, kc := range c.Keys {
		stays := make(map[string]bool, len(kc.Incidents))
		for j := range kc.Incidents {
			stays[kc.Incidents[j].ID] = true
			if count[kc.Incidents[j].ID] > 1 {
				whole[kc.Incidents[j].ID] = true
			}
		}
		for _, id := range kc.Replaced {
			if !stays[id] {
				whole[id] = true
			}
		}
	}
	var h maphash.Hash
	h.SetSeed(s.seed)
	for i := range c.Keys {
		e.incidents[i] = make([]encodedIncident, len(c.Keys[i].Incidents))
		for j := range c.Keys[i].Incidents {
			inc, out := &c.Keys[i].Incidents[j], &e.incidents[i][j]
			l := layout(inc)
			jobs = append(jobs, job{&l.head, &out.head, inc.ID})
			var prev *writtenLists
			if !whole[inc.ID] {
				prev = written[inc.ID]
			}
			if prev == nil {
				prev = &writtenLists{}
			}
			if l.timeline != nil {
				out.timeline.plan(l.timeline, prev.timeline, func(k int) uint64 { return hashEntry(&h, &inc.Timeline[k]) })
				for _, k := range out.timeline.encode {
					jobs = append(jobs, job{&inc.Timeline[k], &out.timeline.values[k], inc.ID})
				}
			}
			if l.alerts != nil {
				out.alerts.plan(l.alerts, prev.alerts, func(k int) uint64 { return hashAlert(&h, &inc.Alerts[k]) })
				for _, k := range out.alerts.encode {
					jobs = append(jobs, job{&inc.Alerts[k], &out.alerts.values[k], inc.ID})
				}
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), 1+len(jobs)/256)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(jobs); i += workers {
				b, err := jsonwire.Marshal(jobs[i].v)
				if err != nil {
					errs[w] = fmt.Errorf("encode %s: %w", jobs[i].id, err)
					return
				}
				*jobs[i].out = b
			}
		}()
	}
	wg.Wait()
	return e, errors.Join(errs...)
}

// An incident is stored as its head, in bucket incidents, and its
// timeline entries and alerts apart, one value each, in a sub-bucket of
// timelines and of alerts named by its ID: an open incident grows by
// entries on every batch during a storm, and a commit then writes the
// entries the batch added or changed, not the whole incident again.
//
// Entries are keyed in the order the correlator sorts them, so reading a
// sub-bucket in key order gives the list back as it was: a timeline by
// time, correlate.KindOrder and event ID (entryKey), alerts by start and
// occurrence ID (alertKey). A list whose keys do not strictly increase
// (two entries with one key, or an order the store does not know) stays
// in the head, as do empty ones; a sub-bucket exists only for a list kept
// apart, and the head then has that list null.
//
// A list shorter than minApart stays in the head too: bbolt gives a
// sub-bucket over a quarter of a page a page of its own, so the few
// entries of a typical incident cost 8 KiB apart against about 2 in the
// head, and rewriting them whole costs little. A list moves apart as it
// grows past it (a storm's), and back if it shrinks.
type incidentLayout struct {
	head hindsight.Incident
	// timeline and alerts are the keys of the lists kept apart; nil for
	// a list the head keeps.
	timeline, alerts [][]byte
}

// appendFill is how full bbolt fills the pages of buckets keyed by time,
// where new keys mostly come last.
const appendFill = 0.9

// minApart is the fewest entries of a list kept apart.
var minApart = 48

func layout(inc *hindsight.Incident) incidentLayout {
	l := incidentLayout{head: *inc}
	if len(inc.Timeline) >= minApart {
		if l.timeline = sortedKeys(len(inc.Timeline), func(i int) []byte { return entryKey(&inc.Timeline[i]) }); l.timeline != nil {
			l.head.Timeline = nil
		}
	}
	if len(inc.Alerts) >= minApart {
		if l.alerts = sortedKeys(len(inc.Alerts), func(i int) []byte { return alertKey(&inc.Alerts[i]) }); l.alerts != nil {
			l.head.Alerts = nil
		}
	}
	return l
}

// sortedKeys returns the n keys key gives, or nil if there are none or
// they do not strictly increase.
func sortedKeys(n int, key func(int) []byte) [][]byte {
	if n == 0 {
		return nil
	}
	keys := make([][]byte, n)
	for i := range n {
		keys[i] = key(i)
		if i > 0 && bytes.Compare(keys[i-1], keys[i]) >= 0 {
			return nil
		}
	}
	return keys
}

func entryKey(e *hindsight.TimelineEntry) []byte {
	k := append(timeKey(e.Time, ""), byte(correlate.KindOrder(e.Kind)))
	return append(k, e.ID...)
}

func alertKey(a *hindsight.AlertSummary) []byte {
	d := hindsight.AlertDetails{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt}
	return timeKey(a.StartsAt, d.OccurrenceID())
}

// encodedIncident is an incident's JSON as the layout stores it.
type encodedIncident struct {
	head             []byte
	timeline, alerts encodedList
}

// encodedList is a list kept apart: its keys and values; keys is nil
// when the head keeps the list.
//
// A delta list is a change to what the file holds (Store.written): only
// the values of the entries new or changed are set, the others nil, and
// gone are the keys to delete. Otherwise every value is set, and putList
// compares them with the stored ones.
type encodedList struct {
	keys, values [][]byte
	delta        bool
	gone         []string
	hashes       []uint64
	prev         map[string]uint64
	encode       []int // the entries to encode
}

// plan sets l's keys and the entries to encode, against prev if known.
func (l *encodedList) plan(keys [][]byte, prev map[string]uint64, hash func(int) uint64) {
	l.keys, l.values, l.hashes, l.prev = keys, make([][]byte, len(keys)), make([]uint64, len(keys)), prev
	l.delta = prev != nil
	found := 0
	for k := range keys {
		l.hashes[k] = hash(k)
		if h, ok := prev[string(keys[k])]; ok {
			found++
			if h == l.hashes[k] {
				continue
			}
		}
		l.encode = append(l.encode, k)
	}
	if found < len(prev) {
		now := make(map[string]bool, len(keys))
		for _, k := range keys {
			now[string(k)] = true
		}
		for k := range prev {
			if !now[k] {
				l.gone = append(l.gone, k)
			}
		}
	}
}

// written is the hashes of l as the file holds it once l is written.
func (l *encodedList) written() map[string]uint64 {
	if l.keys == nil {
		return nil
	}
	m := l.prev
	if m == nil {
		m = make(map[string]uint64, len(l.keys))
	}
	for _, k := range l.gone {
		delete(m, k)
	}
	for _, k := range l.encode {
		m[string(l.keys[k])] = l.hashes[k]
	}
	return m
}

// hashEntry and hashAlert hash every field that goes into the JSON of an
// entry (TestHashesCoverEveryField checks that they know them all).
func hashEntry(h *maphash.Hash, e *hindsight.TimelineEntry) uint64 {
	h.Reset()
	hashString(h, e.ID)
	hashTime(h, &e.Time)
	hashString(h, string(e.Kind))
	hashString(h, string(e.Source))
	hashString(h, e.Summary)
	hashString(h, e.Reason)
	hashBool(h, e.Detection)
	hashLabels(h, e.Labels)
	hashString(h, e.URL)
	hashBool(h, e.Hidden)
	return h.Sum64()
}

func hashAlert(h *maphash.Hash, a *hindsight.AlertSummary) uint64 {
	h.Reset()
	hashString(h, a.Name)
	hashString(h, a.Fingerprint)
	hashString(h, a.Severity)
	hashString(h, a.Instance)
	hashLabels(h, a.Labels)
	hashString(h, a.Summary)
	hashTime(h, &a.StartsAt)
	hashBool(h, a.EndsAt != nil)
	if a.EndsAt != nil {
		hashTime(h, a.EndsAt)
	}
	hashTime(h, &a.ReceivedAt)
	hashString(h, a.GeneratorURL)
	hashString(h, a.RunbookURL)
	hashString(h, a.DashboardURL)
	return h.Sum64()
}

func hashString(h *maphash.Hash, s string) {
	hashInt(h, int64(len(s)))
	h.WriteString(s)
}

func hashInt(h *maphash.Hash, n int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

func hashBool(h *maphash.Hash, b bool) {
	if b {
		h.WriteByte(1)
	} else {
		h.WriteByte(0)
	}
}

// hashTime: the instant and the offset are what its JSON says.
func hashTime(h *maphash.Hash, t *time.Time) {
	_, off := t.Zone()
	hashInt(h, t.Unix())
	hashInt(h, int64(t.Nanosecond()))
	hashInt(h, int64(off))
}

// hashLabels hashes a map in no order: the sum of its pairs' hashes.
func hashLabels(h *maphash.Hash, m map[string]string) {
	hashBool(h, m == nil)
	hashInt(h, int64(len(m)))
	var sum uint64
	for k, v := range m {
		sum += maphash.Comparable(h.Seed(), [2]string{k, v})
	}
	hashInt(h, int64(sum))
}

// encodeIncident encodes one incident, on the caller's goroutine.
func encodeIncident(inc *hindsight.Incident) (encodedIncident, error) {
	l := layout(inc)
	e := encodedIncident{timeline: encodedList{keys: l.timeline}, alerts: encodedList{keys: l.alerts}}
	var err error
	if e.head, err = jsonwire.Marshal(&l.head); err != nil {
		return e, err
	}
	if l.timeline != nil {
		e.timeline.values = make([][]byte, len(inc.Timeline))
		for i := range inc.Timeline {
			if e.timeline.values[i], err = jsonwire.Marshal(&inc.Timeline[i]); err != nil {
				return e, err
			}
		}
	}
	if l.alerts != nil {
		e.alerts.values = make([][]byte, len(inc.Alerts))
		for i := range inc.Alerts {
			if e.alerts.values[i], err = jsonwire.Marshal(&inc.Alerts[i]); err != nil {
				return e, err
			}
		}
	}
	return e, nil
}

// putList makes the sub-bucket id of parent hold exactly l, writing only
// the entries that are new or changed and deleting the ones gone. A list
// the head keeps (l.keys nil) has no sub-bucket.
func putList(parent *bolt.Bucket, id []byte, l encodedList) error {
	if l.keys == nil {
		if parent.Bucket(id) != nil {
			return parent.DeleteBucket(id)
		}
		return nil
	}
	b := parent.Bucket(id)
	if b == nil && l.delta && len(l.prev) > 0 {
		return errStale
	}
	if b == nil {
		var err error
		if b, err = parent.CreateBucket(id); err != nil {
			return err
		}
	}
	// Entries mostly come at the end (time order): fill pages up.
	b.FillPercent = appendFill
	if l.delta {
		for _, k := range l.gone {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		for _, i := range l.encode {
			if err := b.Put(l.keys[i], l.values[i]); err != nil {
				return err
			}
		}
		return nil
	}
	// Both sides are sorted: a merge finds what to write and to delete,
	// done after the cursor is through (bbolt's cursors do not survive
	// a Put).
	var put []int
	var del [][]byte
	c := b.Cursor()
	k, v := c.First()
	for i := 0; k != nil || i < len(l.keys); {
		d := 1
		switch {
		case k == nil:
		case i == len(l.keys):
			d = -1
		default:
			d = bytes.Compare(k, l.keys[i])
		}
		switch {
		case d < 0:
			del = append(del, bytes.Clone(k))
			k, v = c.Next()
		case d > 0:
			put = append(put, i)
			i++
		default:
			if !bytes.Equal(v, l.values[i]) {
				put = append(put, i)
			}
			i++
			k, v = c.Next()
		}
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	for _, i := range put {
		if err := b.Put(l.keys[i], l.values[i]); err != nil {
			return err
		}
	}
	return nil
}

// dropLists deletes the lists an incident keeps apart.
func dropLists(tx *bolt.Tx, id []byte) error {
	for _, name := range [][]byte{bucketTimelines, bucketAlerts} {
		if b := tx.Bucket(name); b.Bucket(id) != nil {
			if err := b.DeleteBucket(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// readIncident decodes the head v of incident id and puts back the lists
// it keeps apart: its timeline if timeline is set, and its alerts.
func readIncident(tx *bolt.Tx, id, v []byte, timeline bool) (*hindsight.Incident, error) {
	inc, err := decodeHead(v, timeline)
	if err != nil {
		return nil, err
	}
	return inc, readLists(tx, id, inc, timeline)
}

// decodeHead decodes an incident's head, without its timeline unless
// timeline is set.
func decodeHead(v []byte, timeline bool) (*hindsight.Incident, error) {
	if timeline {
		return decodeIncident(v)
	}
	if v == nil {
		return nil, errors.New("missing")
	}
	var n struct {
		hindsight.Incident
		Timeline skipJSON `json:"timeline"`
	}
	if err := jsonwire.Unmarshal(v, &n); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &n.Incident, nil
}

func readLists(tx *bolt.Tx, id []byte, inc *hindsight.Incident, timeline bool) error {
	if b := tx.Bucket(bucketAlerts).Bucket(id); b != nil {
		inc.Alerts = nil
		if err := b.ForEach(func(k, v []byte) error {
			inc.Alerts = append(inc.Alerts, hindsight.AlertSummary{})
			if err := jsonwire.Unmarshal(v, &inc.Alerts[len(inc.Alerts)-1]); err != nil {
				return fmt.Errorf("decode alert %x: %w", k, err)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if !timeline {
		return nil
	}
	if b := tx.Bucket(bucketTimelines).Bucket(id); b != nil {
		inc.Timeline = nil
		return b.ForEach(func(k, v []byte) error {
			inc.Timeline = append(inc.Timeline, hindsight.TimelineEntry{})
			if err := jsonwire.Unmarshal(v, &inc.Timeline[len(inc.Timeline)-1]); err != nil {
				return fmt.Errorf("decode timeline entry %x: %w", k, err)
			}
			return nil
		})
	}
	return nil
}

func keyBucket(keys *bolt.Bucket, key string) (*bolt.Bucket, error) {
	kb, err := keys.CreateBucketIfNotExists([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("bucket for key %q: %w", key, err)
	}
	for _, sub := range [][]byte{subEvents, subNotes, subIncidents, subSpans} {
		if _, err := kb.CreateBucketIfNotExists(sub); err != nil {
			return nil, err
		}
	}
	return kb, nil
}

// replaceKey makes kc.Incidents the key's incidents. Incidents whose head
// did not change keep their index entries, and of the timeline entries
// and alerts kept apart only the new, changed and gone ones are written,
// so a batch rewrites only what it changed. The key's incidents bucket
// maps each ID to its by_start key, so dropping an incident from the
// index needs no decoding.
func (s *Store) replaceKey(tx *bolt.Tx, kc correlate.KeyChange, encoded []encodedIncident) error {
	kb, err := keyBucket(tx.Bucket(bucketKeys), kc.Key)
	if err != nil {
		return err
	}
	incs, byStart, open, redirects := tx.Bucket(bucketIncidents), tx.Bucket(bucketByStart), tx.Bucket(bucketOpen), tx.Bucket(bucketRedirects)
	byStart.FillPercent = appendFill
	keyIncs := kb.Bucket(subIncidents)
	next := make(map[string]*encodedIncident, len(kc.Incidents))
	for i := range kc.Incidents {
		next[kc.Incidents[i].ID] = &encoded[i]
	}
	// Drop the region's incidents that changed or went from the indexes.
	spans, pending := kb.Bucket(subSpans), tx.Bucket(bucketPending)
	unchanged := map[string]bool{}
	for _, id := range kc.Replaced {
		id := []byte(id)
		start := bytes.Clone(keyIncs.Get(id))
		e, stays := next[string(id)]
		if stays && start != nil && bytes.Equal(incs.Get(id), e.head) {
			unchanged[string(id)] = true
			continue
		}
		if start != nil {
			if err := byStart.Delete(start); err != nil {
				return err
			}
			if err := spans.Delete(start); err != nil {
				return err
			}
		}
		for _, b := range []*bolt.Bucket{open, keyIncs, pending} {
			if err := b.Delete(id); err != nil {
				return err
			}
		}
		if !stays {
			if err := incs.Delete(id); err != nil {
				return err
			}
			if err := dropLists(tx, id); err != nil {
				return err
			}
		}
	}
	for _, id := range kc.Removed {
		if to := kc.Redirects[id]; to != "" {
			if err := redirects.Put([]byte(id), []byte(to)); err != nil {
				return err
			}
		}
	}
	timelines, alerts := tx.Bucket(bucketTimelines), tx.Bucket(bucketAlerts)
	for i := range kc.Incidents {
		inc := &kc.Incidents[i]
		id := []byte(inc.ID)
		if err := putList(timelines, id, encoded[i].timeline); err != nil {
			return err
		}
		if err := putList(alerts, id, encoded[i].alerts); err != nil {
			return err
		}
		if unchanged[inc.ID] {
			continue
		}
		start := timeKey(inc.StartedAt, inc.ID)
		if err := incs.Put(id, encoded[i].head); err != nil {
			return err
		}
		if err := keyIncs.Put(id, start); err != nil {
			return err
		}
		if err := byStart.Put(start, listed(inc)); err != nil {
			return err
		}
		if err := spans.Put(start, encodeSpan(correlate.SpanOf(inc))); err != nil {
			return err
		}
		if inc.OpensAt != nil {
			v := append(timeKey(*inc.OpensAt, ""), timeKey(inc.StartedAt, kc.Key)...)
			if err := pending.Put(id, v); err != nil {
				return err
			}
		}
		if inc.Status == hindsight.StatusOpen {
			if err := open.Put(id, nil); err != nil {
				return err
			}
		}
		// An ID that is an incident again is no longer a redirect.
		if err := redirects.Delete(id); err != nil {
			return err
		}
	}
	return nil
}

// AddRedirects records that each old ID answers with the incident new,
// unless an incident or a redirect has that ID already, and returns how
// many it added.
func (s *Store) AddRedirects(r map[string]string) (int, error) {
	ids := make([]string, 0, len(r))
	for id := range r {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		incs, redirects := tx.Bucket(bucketIncidents), tx.Bucket(bucketRedirects)
		for _, id := range ids {
			if incs.Get([]byte(id)) != nil || redirects.Get([]byte(id)) != nil {
				continue
			}
			if err := redirects.Put([]byte(id), []byte(r[id])); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// LastSeq returns the stream sequence of the last batch committed.
func (s *Store) LastSeq() (uint64, error) {
	var seq uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySeq); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}

// Watermark implements correlate.Store.
func (s *Store) Watermark() (time.Time, error) {
	var t time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyClock); len(v) == 8 {
			t = keyTime(v)
		}
		return nil
	})
	return t, err
}

// PendingDue implements correlate.Store.
func (s *Store) PendingDue(t time.Time) ([]correlate.Span, error) {
	var out []correlate.Span
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			if len(v) < 16 {
				return fmt.Errorf("pending incident %s: damaged entry", k)
			}
			if !keyTime(v).After(t) {
				out = append(out, correlate.Span{ID: string(k), Key: string(v[16:]), Start: keyTime(v[8:]), End: correlate.FarFuture})
			}
			return nil
		})
	})
	return out, err
}

// Deploys implements correlate.ContextSource.
func (s *Store) Deploys(from, to time.Time) ([]hindsight.Event, error) {
	var out []hindsight.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDeploys).Cursor()
		end := timeKey(to, "\xff")
		for k, v := c.Seek(timeKey(from, "")); k != nil && bytes.Compare(k, end) <= 0; k, v = c.Next() {
			var e hindsight.Event
			if err := jsonwire.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode deploy %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// StartedBetween returns the incidents that started in [from, to], in
// order of start.
func (s *Store) StartedBetween(from, to time.Time) ([]hindsight.Incident, error) {
	return s.startedBetween(from, to, true)
}

// Neighbours implements correlate.ContextSource: StartedBetween without
// the timelines, which are most of an incident's bytes.
func (s *Store) Neighbours(from, to time.Time) ([]hindsight.Incident, error) {
	return s.startedBetween(from, to, false)
}

// IncidentAlerts calls fn with the ID, key and alert occurrences (see
// hindsight.AlertDetails.OccurrenceID) of every incident, decoding
// nothing else.
func (s *Store) IncidentAlerts(fn func(id, key string, occurrences []string) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		alerts := tx.Bucket(bucketAlerts)
		return tx.Bucket(bucketIncidents).ForEach(func(k, v []byte) error {
			var inc struct {
				ID     string `json:"id"`
				Key    string `json:"key"`
				Alerts []struct {
					Fingerprint string    `json:"fingerprint"`
					StartsAt    time.Time `json:"starts_at"`
				} `json:"alerts"`
				Timeline skipJSON `json:"timeline"`
			}
			if err := jsonwire.Unmarshal(v, &inc); err != nil {
				return fmt.Errorf("incident %s: %w", k, err)
			}
			occs := make([]string, len(inc.Alerts))
			for i, a := range inc.Alerts {
				d := hindsight.AlertDetails{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt}
				occs[i] = d.OccurrenceID()
			}
			// Alerts kept apart are keyed by start and occurrence.
			if b := alerts.Bucket(k); b != nil {
				occs = occs[:0]
				if err := b.ForEach(func(ak, _ []byte) error {
					if len(ak) < 8 {
						return fmt.Errorf("incident %s: alert key %x is damaged", k, ak)
					}
					occs = append(occs, string(ak[8:]))
					return nil
				}); err != nil {
					return err
				}
			}
			return fn(inc.ID, inc.Key, occs)
		})
	})
}

// skipJSON takes a JSON value and keeps nothing of it.
type skipJSON struct{}

func (skipJSON) UnmarshalJSON([]byte) error { return nil }

func (s *Store) startedBetween(from, to time.Time, timeline bool) ([]hindsight.Incident, error) {
	var out []hindsight.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		incs := tx.Bucket(bucketIncidents)
		c := tx.Bucket(bucketByStart).Cursor()
		end := timeKey(to, "\xff")
		for k, _ := c.Seek(timeKey(from, "")); k != nil && bytes.Compare(k, end) <= 0; k, _ = c.Next() {
			inc, err := readIncident(tx, k[8:], incs.Get(k[8:]), timeline)
			if err != nil {
				return fmt.Errorf("incident %s: %w", k[8:], err)
			}
			out = append(out, *inc)
		}
		return nil
	})
	return out, err
}

// OpenIncidents counts the incidents now open.
func (s *Store) OpenIncidents() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOpen).Stats().KeyN
		return nil
	})
	return n, err
}

// PendingIncidents counts the incidents a rule's open_after holds back
// while their alerts fire.
func (s *Store) PendingIncidents() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	return n, err
}

// Incident returns an incident by ID, following the redirects merges
// leave behind.
func (s *Store) Incident(_ context.Context, id string) (*hindsight.Incident, error) {
	var inc *hindsight.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		incs, redirects := tx.Bucket(bucketIncidents), tx.Bucket(bucketRedirects)
		cur := []byte(id)
		for range 32 {
			if v := incs.Get(cur); v != nil {
				var err error
				inc, err = readIncident(tx, cur, v, true)
				return err
			}
			next := redirects.Get(cur)
			if next == nil {
				break
			}
			cur = next
		}
		return fmt.Errorf("incident %q: %w", id, hindsight.ErrNotFound)
	})
	return inc, err
}

// ListOptions filters and pages a list of incidents.
type ListOptions struct {
	Limit  int
	Cursor string // from the previous page's NextCursor
	// Status filters; "" lists open and resolved incidents, not pending
	// or suppressed ones.
	Status  hindsight.Status
	Service string
}

// List returns incidents newest first (by start), and the cursor of the
// next page ("" on the last page).
func (s *Store) List(_ context.Context, o ListOptions) ([]hindsight.Incident, string, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	var out []hindsight.Incident
	var next string
	err := s.db.View(func(tx *bolt.Tx) error {
		incs := tx.Bucket(bucketIncidents)
		c := tx.Bucket(bucketByStart).Cursor()
		var k, v []byte
		if o.Cursor != "" {
			from, err := decodeCursor(o.Cursor)
			if err != nil {
				return err
			}
			// The cursor is the first incident not yet returned.
			k, v = c.Seek(from)
			if k == nil {
				k, v = c.Last()
			} else if !bytes.Equal(k, from) {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			if len(out) == o.Limit {
				next = encodeCursor(k)
				return nil
			}
			// by_start says each incident's status and service (files
			// before it did have none there): a filter that matches few
			// decodes only those.
			if status, service, ok := parseListed(v); ok && !o.matches(status, service) {
				continue
			}
			inc, err := decodeIncident(incs.Get(k[8:]))
			if err != nil {
				return fmt.Errorf("incident %s: %w", k[8:], err)
			}
			if !o.matches(inc.Status, inc.Service) {
				continue
			}
			if err := readLists(tx, k[8:], inc, true); err != nil {
				return fmt.Errorf("incident %s: %w", k[8:], err)
			}
			out = append(out, *inc)
		}
		return nil
	})
	return out, next, err
}

// matches says whether an incident of status and service belongs on the
// list: without a status, the incidents that opened (alerts held back by
// open_after are asked for by name).
func (o ListOptions) matches(status hindsight.Status, service string) bool {
	if (o.Status == "" && !status.Opened()) || (o.Status != "" && status != o.Status) {
		return false
	}
	return o.Service == "" || service == o.Service
}

// listed is the value of an incident's by_start entry: its status and
// service, what List filters on.
func listed(inc *hindsight.Incident) []byte {
	return []byte(string(inc.Status) + "\x00" + inc.Service)
}

func parseListed(v []byte) (hindsight.Status, string, bool) {
	status, service, ok := bytes.Cut(v, []byte{0})
	return hindsight.Status(status), string(service), ok
}

func decodeIncident(v []byte) (*hindsight.Incident, error) {
	if v == nil {
		return nil, errors.New("missing")
	}
	var inc hindsight.Incident
	if err := jsonwire.Unmarshal(v, &inc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &inc, nil
}

// timeKey is the big-endian Unix nanoseconds of t, then id: byte order
// is time order.
//
// Times outside UnixNano's range (1678 to 2262), such as the zero time a
// caller may pass as "from the beginning", are clamped to it.
func timeKey(t time.Time, id string) []byte {
	if t.Before(minTime) {
		t = minTime
	} else if t.After(maxTime) {
		t = maxTime
	}
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(t.UnixNano())^(1<<63))
	return append(k, id...)
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63))).UTC()
}

// Size returns the file's size in bytes.
func (s *Store) Size() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Counts is how much a state file holds.
type Counts struct {
	Events    int // distinct events folded
	Incidents int
	Open      int // incidents now open
	Redirects int // IDs of merged incidents that answer with another
}

// Counts counts the events, incidents and redirects in the file.
func (s *Store) Counts() (Counts, error) {
	var c Counts
	if err := s.flushIndex(); err != nil {
		return c, err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c.Events = tx.Bucket(bucketEventIndex).Stats().KeyN
		c.Incidents = tx.Bucket(bucketIncidents).Stats().KeyN
		c.Open = tx.Bucket(bucketOpen).Stats().KeyN
		c.Redirects = tx.Bucket(bucketRedirects).Stats().KeyN
		return nil
	})
	return c, err
}

// Redirects returns every redirect merges left: the ID of an incident
// that no longer exists, and the ID it answers with.
func (s *Store) Redirects() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRedirects).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	return out, err
}

// EventPlace is where the store keeps an event: its correlation key, and
// the incident of that key whose span holds the event's time, with that
// incident's status ("" for an event no incident holds, one the rules
// ignore). An alert held back by open_after is in a pending incident.
type EventPlace struct {
	ID         string           `json:"id"`
	Key        string           `json:"key,omitempty"`
	Time       time.Time        `json:"time"`
	ReceivedAt time.Time        `json:"received_at"`
	Incident   string           `json:"incident,omitempty"`
	Status     hindsight.Status `json:"status,omitempty"`
}

// EventPlace says where an event is, without reading any incident whole:
// it answers as soon as the commit that folded the event, and costs a
// lookup in the event index and one in the key's spans.
func (s *Store) EventPlace(_ context.Context, eventID string) (EventPlace, error) {
	known, err := s.Known([]string{eventID})
	if err != nil {
		return EventPlace{}, err
	}
	k, ok := known[eventID]
	if !ok {
		return EventPlace{}, fmt.Errorf("event %q: %w", eventID, hindsight.ErrNotFound)
	}
	p := EventPlace{ID: eventID, Key: k.Key, Time: k.Time, ReceivedAt: k.ReceivedAt}
	if k.Key == "" {
		return p, nil
	}
	spans, err := s.KeySpans(k.Key, k.Time, k.Time)
	if err != nil {
		return EventPlace{}, err
	}
	for _, sp := range spans {
		if !sp.Start.After(k.Time) && !sp.End.Before(k.Time) {
			p.Incident, p.Status = sp.ID, sp.Status
			break
		}
	}
	return p, nil
}

// IncidentOfEvent returns the incident an event was folded into: the one
// of its key whose span holds the event's time.
func (s *Store) IncidentOfEvent(ctx context.Context, eventID string) (*hindsight.Incident, error) {
	p, err := s.EventPlace(ctx, eventID)
	if err != nil {
		return nil, err
	}
	if p.Incident == "" {
		return nil, fmt.Errorf("event %q: no incident holds it: %w", eventID, hindsight.ErrNotFound)
	}
	return s.Incident(ctx, p.Incident)
}
