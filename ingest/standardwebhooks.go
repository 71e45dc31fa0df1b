package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// Standard Webhooks (https://www.standardwebhooks.com/) sign
// "{webhook-id}.{webhook-timestamp}.{body}" with HMAC-SHA256; the
// signature header lists "v1,<base64>" entries separated by spaces (more
// than one while the sender rotates its secret).
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
	standardWebhooksPrefix = "whsec_"
)

// StandardWebhooksTolerance is how far webhook-timestamp may be from
// Hindsight's clock, either way: a signed request replayed later than
// that is refused. It is the specification's recommended window.
const StandardWebhooksTolerance = 5 * time.Minute

type standardWebhooksSigner struct{ key []byte }

// newStandardWebhooksSigner takes a secret as senders show it: "whsec_"
// and the base64 of the key (the prefix may be left out).
func newStandardWebhooksSigner(secret string) (standardWebhooksSigner, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(secret), standardWebhooksPrefix))
	if err != nil {
		return standardWebhooksSigner{}, errors.New(`want "whsec_" followed by the base64 of the key`)
	}
	if len(key) == 0 {
		return standardWebhooksSigner{}, errors.New("the key is empty")
	}
	return standardWebhooksSigner{key: key}, nil
}

func (standardWebhooksSigner) present(h http.Header) bool { return h.Get(headerWebhookSignature) != "" }

func (standardWebhooksSigner) missing() string {
	return "missing or wrong credentials: send an Authorization header, or sign the request as Standard Webhooks do (webhook-id, webhook-timestamp, webhook-signature)"
}

func (s standardWebhooksSigner) verify(h http.Header, body []byte, now time.Time) error {
	return s.verifyAt(h.Get(headerWebhookID), h.Get(headerWebhookTimestamp), h.Get(headerWebhookSignature), body, now)
}

// verifyAt checks a Standard Webhooks signature, then that its timestamp
// is within StandardWebhooksTolerance of now. The signature comes first,
// so that only an authentic sender learns about its clock.
func (s standardWebhooksSigner) verifyAt(id, timestamp, signatures string, body []byte, now time.Time) error {
	if id == "" || timestamp == "" {
		return unauthorized("a Standard Webhooks signature needs the webhook-id and webhook-timestamp headers")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return unauthorized("webhook-timestamp %q is not a time in Unix seconds", clip(timestamp))
	}
	want := []byte(s.sign(id, ts, body))
	ok := false
	for _, entry := range strings.Fields(signatures) {
		version, sig, found := strings.Cut(entry, ",")
		// Other versions (v1a is Ed25519) are not ours to check. Every
		// entry is compared, so the time taken says nothing about which
		// one matched.
		if found && version == "v1" && hmac.Equal([]byte(sig), want) {
			ok = true
		}
	}
	if !ok {
		return unauthorized("webhook-signature does not match: check that the sender and Hindsight have the same secret")
	}
	// The differences are taken in uint64, which holds any distance
	// between two int64s, so no timestamp can overflow its way in.
	tolerance := uint64(StandardWebhooksTolerance / time.Second)
	n := now.Unix()
	var off string
	switch {
	case ts < n && uint64(n)-uint64(ts) > tolerance:
		off = "before"
	case ts > n && uint64(ts)-uint64(n) > tolerance:
		off = "after"
	default:
		return nil
	}
	return unauthorized("webhook-timestamp %d%s is more than %s %s Hindsight's clock (%s): outside the replay window; a replayed message, or the sender's clock is off",
		ts, readableUnix(ts), hindsight.FormatDuration(StandardWebhooksTolerance), off, now.UTC().Format(time.RFC3339))
}

// readableUnix returns " (2021-02-25T15:02:10Z)" for a Unix time in years
// 1 to 9999, else nothing.
func readableUnix(ts int64) string {
	const first, last = -62135596800, 253402300799
	if ts < first || ts > last {
		return ""
	}
	return " (" + time.Unix(ts, 0).UTC().Format(time.RFC3339) + ")"
}

// sign returns the base64 signature of one message.
func (s standardWebhooksSigner) sign(id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseDeployMessage is parseDeploy for a request that may carry a
// Standard Webhooks webhook-id: a body without "id" takes it as the
// deploy's ID, so that the sender's retries of one message (same
// webhook-id, new timestamp and signature) collapse onto one event.
func parseDeployMessage(body []byte, msgID string, receivedAt time.Time) (hindsight.Event, error) {
	var p deployPayload
	if err := decodeObject(body, &p, true); err != nil {
		return hindsight.Event{}, err
	}
	if strings.TrimSpace(p.ID) == "" {
		p.ID = msgID
	}
	return deployEvent(p, receivedAt)
}
