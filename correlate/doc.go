// Package correlate folds events into incidents.
//
// The fold (Config.Fold) is pure: it reads no clock, does no I/O, and
// computes the incidents of one correlation key from the set of that key's
// events. Because it works on the set, not on the order of arrival, the
// same events give the same incidents, IDs included, whatever order they
// were delivered in; a replay of the stream rebuilds the store exactly.
//
// The Correlator drives the fold from the stream: for each batch it drops
// events it already has (by event ID), refolds every key the batch
// touches, and commits events and incidents in one store transaction,
// before the batch is acknowledged.
//
// # Caveats
//
// Each batch refolds the whole history of every key it touches. That is
// simple and obviously deterministic, and cheap for the hundreds of events
// a key gathers in a typical incident, but costs O(events of the key) per
// batch for a key with a long history.
//
// An incident's ID derives from its earliest alert occurrence. When a late
// alert starts before it, or merges two incidents, the incident takes the
// new ID and the old ID redirects to it, so links keep working.
package correlate
