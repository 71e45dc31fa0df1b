// Package boltstore keeps Hindsight's state in a bbolt file: every event
// by correlation key, the incidents folded from them, redirects left by
// merged incidents, and the stream position last applied.
//
// The file is a cache of the JetStream stream: `hindsight rebuild` folds
// the stream into a new file with the same incidents and swaps it in.
//
// # Caveats
//
// bbolt allows one process per file (it takes an flock); a second
// Hindsight on the same data directory waits up to five seconds and then
// fails with a clear error. Lock takes the same lock without opening the
// file, for tools that must keep Hindsight out.
//
// Open checks a file before trusting it, because bbolt follows page IDs
// into its memory map unchecked: a damaged file can make bbolt panic or
// fault, and even bbolt's own tx.Check dies of a fault (in a goroutine of
// its own, where it cannot be recovered) on a single flipped byte in a
// child pointer. So Open reads the file without mapping it and checks
// both meta pages, the file size against the last transaction's
// high-water mark (a truncated file), and every page in use: in bounds,
// referenced once, not also free, of the right type, keys in order; then
// the buckets and the schema version. It costs about as much as reading
// the pages in use: 0.2-0.4s for 100,000 events (a 380-470 MB file) with a
// warm page cache. Anything wrong gives an error that names the file,
// says what is wrong and gives the rebuild command (ErrNeedsRebuild).
//
// What the check cannot see: bbolt keeps no checksum of data pages, so a
// flipped byte inside a stored value (an event's or incident's JSON) is
// invisible to any structural check; it shows as a decode error when the
// value is read, or not at all.
//
// One damaged meta page is not an error: it is what a crash while writing
// it leaves, and bbolt then opens the other, the previous transaction,
// whose stream position goes back with it, so the correlator folds the
// last batch again. A file that does not exist or is empty is a new state
// (an empty file is what a crash right after creating it leaves); the
// correlator then folds the stream from its first event.
//
// An incident is stored as its head (bucket incidents) and, one value
// per entry, its timeline and alerts (a sub-bucket per incident in
// buckets timelines and alerts, keyed in the order the correlator sorts
// them), so that a commit writes the entries a batch added, changed or
// removed rather than the whole incident: during an alert storm an open
// incident grows by thousands of entries and is refolded on every batch.
// Store remembers a hash of each entry of its open and pending incidents
// and encodes only the entries whose hash changed. Schema version 3; Open
// migrates a file of version 2 in place, in one transaction.
//
// Keys are byte-sorted, so time-ordered keys start with the big-endian
// Unix nanoseconds of the time. Times before 1970 sort first.
package boltstore
