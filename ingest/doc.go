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
//   - Without credentials an endpoint is open to anyone who can reach it;
//     AuthConfig.Unprotected lists such endpoints so that the program can
//     refuse to listen beyond loopback.
package ingest
