// Package ingest receives what Hindsight records: Alertmanager webhooks
// (payload version 4), deploy webhooks and human notes on incidents. It
// authenticates each request, validates it, turns it into
// hindsight.Events with stable IDs and answers 2xx only once the Publisher
// has acknowledged every event of the request.
//
// One alert of a notification becomes one event: alert.firing at its
// startsAt or alert.resolved at its endsAt, with an ID derived from the
// fingerprint, startsAt and status. Alertmanager resends every firing alert
// of a group on each group_interval; those repeats carry the IDs already
// published. The stream drops them within its duplicate window (reported
// as "duplicates"); later repeats are published again and the correlator
// drops them by ID.
//
// Deploys also arrive in the formats pipelines already send. POST
// /hooks/github takes GitHub's deployment_status webhook: a status
// becomes a deploy event (pending, queued, in_progress: started; success:
// succeeded; failure, error: failed) whose deploy ID names the GitHub
// deployment, so that a redelivery, and the statuses of one deployment
// that mean the same thing, collapse onto one event; ping, inactive and
// every other event type answer 200 {"ignored": ...}. Argo CD's
// notifications post Hindsight's own deploy JSON to /hooks/deploy (see
// deploy/argocd-notifications.yaml). Senders that sign their requests
// authenticate by signature: GitHub's X-Hub-Signature-256 on
// /hooks/github, Standard Webhooks (webhook-id, webhook-timestamp,
// webhook-signature, refused outside a 5m replay window) on /hooks/deploy.
// A request that relies on a signature is refused unread without one;
// with one, its body is read within the limit and the signature verified
// (in constant time) before anything decodes it.
//
// Status codes follow what senders do with them. Alertmanager retries a
// 5xx but never retries a 4xx within a flush (it resends the group on the
// next group_interval, forever), so a 4xx means the request can never
// succeed: bad JSON, a missing or bad field, wrong credentials, a body over
// the limit. A notification with some unusable alerts keeps the others and
// lists the bad ones in "rejected"; only when none is usable is it a 400.
// When the broker is away (an error wrapping hindsight.ErrUnavailable, or
// the publish timeout) the answer is 503 with Retry-After, and nothing of
// the request is acknowledged.
//
// # Caveats
//
//   - A deploy without "id" or "time" gets the time it was received, so a
//     retried request is a new deploy. Pipelines that retry should send
//     one of them.
//   - A note has no natural identity: each request is a new event, so a
//     client that retries a note after a timeout may record it twice.
//   - A 2xx after a partial publish never happens, but a 5xx may follow a
//     publish that reached the stream in part. That is safe: the sender
//     retries and the stream deduplicates by event ID (Nats-Msg-Id), within
//     the stream's duplicate window.
//   - Alertmanager's truncatedAlerts (alerts dropped to honour max_alerts)
//     never reach Hindsight; they are only logged.
//   - A Standard Webhooks message's webhook-id becomes the deploy ID of a
//     body without "id", so the sender's retries collapse; a body with
//     "id" keeps its own.
//   - Without credentials an endpoint is open to anyone who can reach it;
//     AuthConfig.Unprotected lists such endpoints so that the program can
//     refuse to listen beyond loopback.
package ingest
