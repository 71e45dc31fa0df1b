// Package hindsight holds the domain of Hindsight: the events that arrive
// from Alertmanager, deploy pipelines and humans, the incidents they are
// folded into, and the postmortem a human finishes.
//
// It imports only the standard library. Each technology (NATS JetStream,
// bbolt, HTTP) lives in its own package and speaks these types.
//
// # Caveats
//
// Event IDs are derived from content (see AlertEventID and DeployEventID),
// so the same fact received twice has the same ID. Changing the derivation
// changes every ID and breaks deduplication against an existing stream:
// never change it without a migration.
package hindsight
