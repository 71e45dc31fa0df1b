package correlate

import (
	"container/list"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// DefaultCacheEvents bounds the decoded events the correlator keeps in
// memory between batches: about 30 MB of them. 100,000 took about 5% less
// CPU an alert in a storm (bench/run.sh, targets hindsight and
// hindsight-relaxed: 155 and 72 µs against 159 and 77) for about 90 MB
// more of resident memory.
const DefaultCacheEvents = 25_000

// eventCache keeps, for the keys refolded last, the events the store
// holds for them from some time on, decoded: during a storm every batch
// refolds each touched key's open incident from all of its events, and
// decoding them again from the store was most of the correlator's work.
// The correlator is the store's only writer, so the cache follows its
// commits exactly; a failed commit empties it.
type eventCache struct {
	limit int // events
	size  int
	keys  map[string]*list.Element
	lru   *list.List // of *cachedKey, most recent first
}

// cachedKey holds every event of key whose time is at or after from (all
// its notes and human acts, whatever their time), as the store has them
// (with the superseded copy of an event that was replaced beside the new
// one: the fold keeps the one that counts).
type cachedKey struct {
	key    string
	from   time.Time
	events []hindsight.Event
}

func newEventCache(limit int) *eventCache {
	return &eventCache{limit: limit, keys: map[string]*list.Element{}, lru: list.New()}
}

// get returns key's events in [from, to] and all its notes, as
// Store.KeyEvents does, if the cache holds them.
func (c *eventCache) get(key string, from, to time.Time) ([]hindsight.Event, bool) {
	if c == nil {
		return nil, false
	}
	el, ok := c.keys[key]
	if !ok {
		return nil, false
	}
	ck := el.Value.(*cachedKey)
	if from.Before(ck.from) {
		return nil, false
	}
	c.lru.MoveToFront(el)
	out := make([]hindsight.Event, 0, len(ck.events))
	for _, e := range ck.events {
		if e.Note != nil || e.Human != nil || (!e.Time.Before(from) && !e.Time.After(to)) {
			out = append(out, e)
		}
	}
	return out, true
}

// put records that the store holds events for key from from on (every
// one, up to FarFuture), and evicts the least recent keys over the limit.
func (c *eventCache) put(key string, from time.Time, events []hindsight.Event) {
	if c == nil {
		return
	}
	c.drop(key)
	if len(events) > c.limit/2 {
		return // one key would crowd out the others
	}
	c.keys[key] = c.lru.PushFront(&cachedKey{key: key, from: from, events: events})
	c.size += len(events)
	for c.size > c.limit {
		c.drop(c.lru.Back().Value.(*cachedKey).key)
	}
}

func (c *eventCache) drop(key string) {
	if el, ok := c.keys[key]; ok {
		c.size -= len(el.Value.(*cachedKey).events)
		c.lru.Remove(el)
		delete(c.keys, key)
	}
}

func (c *eventCache) clear() {
	if c == nil {
		return
	}
	c.keys, c.size = map[string]*list.Element{}, 0
	c.lru.Init()
}
