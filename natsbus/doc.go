// Package natsbus connects Hindsight to NATS JetStream: it runs the
// embedded nats-server, sets up the HINDSIGHT_EVENTS stream, publishes
// events with Nats-Msg-Id set to their ID, and drives durable consumers.
//
// # Caveats
//
// JetStream deduplicates by Nats-Msg-Id only within the stream's duplicate
// window (DefaultDuplicateWindow). Alertmanager repeats a firing alert every
// repeat_interval, usually hours apart, so the consumer must deduplicate by
// event ID as well; correlate does.
//
// The embedded server fsyncs every message before acknowledging it
// (SyncAlways). An external server does what its configuration says: with
// the default sync_interval of 2 minutes a machine crash can lose
// acknowledged messages unless the stream has three replicas.
package natsbus
