package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

// swSecret is the secret of the Standard Webhooks libraries' own tests.
const swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// swHeaders signs body as a Standard Webhooks sender does, at ts.
func swHeaders(t testing.TB, secret, id string, ts time.Time, body []byte) map[string]string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + stamp + "."))
	mac.Write(body)
	return map[string]string{
		"webhook-id":        id,
		"webhook-timestamp": stamp,
		"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)),
	}
}

func TestStandardWebhooksAuth(t *testing.T) {
	body := []byte(`{"service":"checkout","version":"v2.3.1","status":"succeeded","time":"2026-11-22T04:12:00Z"}`)
	now := receivedAt
	signed := swHeaders(t, swSecret, "msg_2mVq3kYpWf8LtX9cB1nZ", now, body)
	with := func(k, v string) map[string]string {
		out := map[string]string{}
		for hk, hv := range signed {
			out[hk] = hv
		}
		out[k] = v
		return out
	}
	signedOnly := ingest.AuthConfig{DeployStandardWebhooksSecret: swSecret}
	both := ingest.AuthConfig{DeployStandardWebhooksSecret: swSecret, Deploy: ingest.Credentials{BearerToken: "tok"}}
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key of twenty-four"))
	tests := []struct {
		name       string
		auth       ingest.AuthConfig
		body       []byte
		header     map[string]string
		wantStatus int
		wantErr    string
	}{
		{name: "signed", auth: signedOnly, body: body, header: signed, wantStatus: 200},
		{name: "key without the whsec_ prefix", auth: ingest.AuthConfig{DeployStandardWebhooksSecret: strings.TrimPrefix(swSecret, "whsec_")}, body: body, header: signed, wantStatus: 200},
		{name: "one of several signatures (rotation)", auth: signedOnly, body: body,
			header: with("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,c2lnbmVk "+signed["webhook-signature"]), wantStatus: 200},
		{name: "4m59s old", auth: signedOnly, body: body, header: swHeaders(t, swSecret, "msg_1", now.Add(-299*time.Second), body), wantStatus: 200},
		{name: "4m59s ahead", auth: signedOnly, body: body, header: swHeaders(t, swSecret, "msg_1", now.Add(299*time.Second), body), wantStatus: 200},
		{name: "unsigned", auth: signedOnly, body: body, wantStatus: 401, wantErr: "credentials"},
		{name: "unsigned, before the body is read", auth: signedOnly, body: []byte(strings.Repeat(" ", 2<<20)), wantStatus: 401, wantErr: "credentials"},
		{name: "replayed 6m later", auth: signedOnly, body: body, header: swHeaders(t, swSecret, "msg_1", now.Add(-6*time.Minute), body), wantStatus: 401,
			wantErr: "webhook-timestamp 1795321440 (2026-11-22T04:24:00Z) is more than 5m before Hindsight's clock (2026-11-22T04:30:00Z): outside the replay window"},
		{name: "6m ahead", auth: signedOnly, body: body, header: swHeaders(t, swSecret, "msg_1", now.Add(6*time.Minute), body), wantStatus: 401, wantErr: "more than 5m after Hindsight's clock"},
		{name: "other secret", auth: signedOnly, body: body, header: swHeaders(t, other, "msg_1", now, body), wantStatus: 401, wantErr: "webhook-signature does not match"},
		{name: "body changed", auth: signedOnly, body: []byte(strings.Replace(string(body), "succeeded", "failed", 1)), header: signed, wantStatus: 401, wantErr: "does not match"},
		{name: "id changed", auth: signedOnly, body: body, header: with("webhook-id", "msg_other"), wantStatus: 401, wantErr: "does not match"},
		{name: "timestamp changed", auth: signedOnly, body: body, header: with("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10)), wantStatus: 401, wantErr: "does not match"},
		{name: "no id", auth: signedOnly, body: body, header: with("webhook-id", ""), wantStatus: 401, wantErr: "webhook-id and webhook-timestamp"},
		{name: "timestamp not a number", auth: signedOnly, body: body, header: with("webhook-timestamp", "2026-11-22T04:30:00Z"), wantStatus: 401, wantErr: "not a time in Unix seconds"},
		{name: "v2 only", auth: signedOnly, body: body, header: with("webhook-signature", strings.Replace(signed["webhook-signature"], "v1,", "v2,", 1)), wantStatus: 401, wantErr: "does not match"},
		{name: "signature checked before JSON", auth: signedOnly, body: []byte("{"), header: signed, wantStatus: 401, wantErr: "does not match"},
		{name: "signed bad JSON", auth: signedOnly, body: []byte("{"), header: swHeaders(t, swSecret, "msg_1", now, []byte("{")), wantStatus: 400, wantErr: "malformed JSON"},
		{name: "bearer still accepted", auth: both, body: body, header: map[string]string{"Authorization": "Bearer tok"}, wantStatus: 200},
		{name: "wrong bearer, good signature", auth: both, body: body, header: with("Authorization", "Bearer nope"), wantStatus: 200},
		{name: "neither", auth: both, body: body, header: map[string]string{"Authorization": "Bearer nope"}, wantStatus: 401, wantErr: "credentials"},
		// Without a secret, a signature proves nothing and changes nothing.
		{name: "not configured, open", auth: ingest.AuthConfig{}, body: body, header: swHeaders(t, other, "msg_1", now, body), wantStatus: 200},
		{name: "not configured, bearer", auth: ingest.AuthConfig{Deploy: ingest.Credentials{BearerToken: "tok"}}, body: body, header: signed, wantStatus: 401, wantErr: "credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{Auth: tc.auth})
			r := post(t, srv.URL+deployPath, tc.body, tc.header)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", r.status, r.raw, tc.wantStatus)
			}
			if !strings.Contains(r.err.Error, tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", r.err.Error, tc.wantErr)
			}
			if n := pub.callCount(); (n == 0) != (tc.wantStatus != 200) {
				t.Errorf("Publish called %d times with status %d", n, r.status)
			}
		})
	}
	if _, err := ingest.New(ingest.Options{Publisher: &recordingPublisher{}, Auth: ingest.AuthConfig{DeployStandardWebhooksSecret: "whsec_not base64!"}}); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("New with a bad secret = %v, want an error about base64", err)
	}
}

// TestStandardWebhooksRetry checks that the sender's retries of one
// message (same webhook-id, new timestamp and signature) collapse onto
// one event when the body has no "id", and that a body's own "id" wins.
func TestStandardWebhooksRetry(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{Auth: ingest.AuthConfig{DeployStandardWebhooksSecret: swSecret}})
	body := []byte(`{"service":"checkout","version":"v2.3.1","status":"started"}`) // no time: the time it arrived
	first := post(t, srv.URL+deployPath, body, swHeaders(t, swSecret, "msg_2mVq3kYpWf8LtX9cB1nZ", receivedAt.Add(-time.Minute), body))
	retry := post(t, srv.URL+deployPath, body, swHeaders(t, swSecret, "msg_2mVq3kYpWf8LtX9cB1nZ", receivedAt, body))
	if first.status != 200 || retry.status != 200 {
		t.Fatalf("statuses %d (%s), %d (%s), want 200", first.status, first.raw, retry.status, retry.raw)
	}
	if retry.ok.Events[0] != first.ok.Events[0] || retry.ok.Duplicates != 1 {
		t.Errorf("retry answer %+v, want the first's event %s as a duplicate", retry.ok, first.ok.Events[0])
	}
	want := hindsight.DeployEventID(hindsight.DeployDetails{ID: "msg_2mVq3kYpWf8LtX9cB1nZ", Status: "started"}, "checkout", time.Time{})
	if first.ok.Events[0] != want {
		t.Errorf("event %s, want %s (the webhook-id as deploy ID)", first.ok.Events[0], want)
	}
	next := post(t, srv.URL+deployPath, body, swHeaders(t, swSecret, "msg_other", receivedAt, body))
	if next.status != 200 || next.ok.Duplicates != 0 {
		t.Errorf("another message: %d %+v, want a new event", next.status, next.ok)
	}
	withID := []byte(`{"id":"pipeline-812","service":"checkout","status":"succeeded"}`)
	r := post(t, srv.URL+deployPath, withID, swHeaders(t, swSecret, "msg_3", receivedAt, withID))
	if want := hindsight.DeployEventID(hindsight.DeployDetails{ID: "pipeline-812", Status: "succeeded"}, "checkout", time.Time{}); r.status != 200 || r.ok.Events[0] != want {
		t.Errorf("body with id: %d %+v, want event %s", r.status, r.ok, want)
	}
	if got := pub.published(); len(got) != 3 || got[0].Deploy.ID != "msg_2mVq3kYpWf8LtX9cB1nZ" || got[2].Deploy.ID != "pipeline-812" {
		t.Errorf("published %+v, want 3 deploys: msg_2mVq…, msg_other, pipeline-812", got)
	}
}
