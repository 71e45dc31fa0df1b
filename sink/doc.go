// Package sink delivers incidents outside Hindsight when their lifecycle
// changes: the directory sink writes each published postmortem as a
// Markdown file (for a docs repository), the webhook sink posts a short
// JSON summary (Slack-compatible "text") when an incident resolves.
//
// Sinks follow the incident notices the correlator publishes after each
// commit, each through its own durable consumer: a notice is acknowledged
// once the sink succeeded, retried with backoff when it failed for a
// reason that may pass (a 5xx, a timeout, a full disk), and dropped, logged
// and counted in hindsight_sink_failed_total after the last attempt or at
// once for a reason that will not (a 4xx). Sinks run beside the correlator
// and read the incident from its store, so a notice tells them what
// changed and the store what the incident is now.
//
// # Caveats
//
// A notice is lost when NATS is away at the moment the correlator
// publishes it (see natsbus). The directory sink catches up at startup by
// writing every published postmortem whose file is missing; the webhook
// sink has nothing to catch up from and misses that message.
//
// A sink sees a notice at least once, not exactly once: a crash between
// the sink's work and its ack, or two correlator replicas cutting the
// stream into different batches, repeat it. Writing a file again is
// harmless; a webhook may post twice.
//
// A correlator that folds the stream from the start (a new replica, a
// rebuild while serve runs) publishes a notice for every change in its
// history; the webhook sink skips changes older than skip_older_than
// (default 1h) so that a chat channel is not flooded with old news.
//
// Processes that share a sink's consumer name share its work: replicas
// keep one webhook consumer, so each notice is posted once. The
// directory sink's consumer is named after the correlator's consumer, so
// each correlator replica writes every file into its own directory.
package sink
