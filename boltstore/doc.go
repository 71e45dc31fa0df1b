// Package boltstore keeps Hindsight's state in a bbolt file: every event
// by correlation key, the incidents folded from them, redirects left by
// merged incidents, and the stream position last applied.
//
// The file is a cache of the JetStream stream: `hindsight rebuild` folds
// the stream into a new file that equals it.
//
// # Caveats
//
// bbolt allows one process per file (it takes an flock); a second
// Hindsight on the same data directory waits up to Options.Timeout and
// then fails with a clear error.
//
// Keys are byte-sorted, so time-ordered keys start with the big-endian
// Unix nanoseconds of the time. Times before 1970 sort first.
package boltstore
