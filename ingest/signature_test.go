package ingest

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestVerifyGitHubSignature checks the verification against the example
// of GitHub's documentation ("Validating webhook deliveries").
func TestVerifyGitHubSignature(t *testing.T) {
	const (
		secret  = "It's a Secret to Everybody"
		payload = "Hello, World!"
		good    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	)
	tests := []struct {
		name    string
		secret  string
		payload string
		header  string
		wantErr string // "" = verified
	}{
		{"GitHub's example", secret, payload, good, ""},
		{"uppercase hex", secret, payload, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), ""},
		{"surrounding blanks", secret, payload, " " + good + " ", ""},
		{"other secret", "It's a Secret to Nobody", payload, good, "does not match"},
		{"other payload", secret, "Hello, World?", good, "does not match"},
		{"empty payload", secret, "", good, "does not match"},
		{"last digit changed", secret, payload, good[:len(good)-1] + "8", "does not match"},
		{"empty", secret, payload, "", "does not start with sha256="},
		{"no prefix", secret, payload, strings.TrimPrefix(good, "sha256="), "does not start with sha256="},
		{"SHA-1 header value", secret, payload, "sha1=" + strings.TrimPrefix(good, "sha256="), "does not start with sha256="},
		{"odd length", secret, payload, good[:len(good)-1], "64 hex digits"},
		{"truncated", secret, payload, good[:39], "64 hex digits"},
		{"too long", secret, payload, good + "00", "64 hex digits"},
		{"not hex", secret, payload, "sha256=" + strings.Repeat("g", 64), "64 hex digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyGitHubSignature([]byte(tc.secret), tc.header, []byte(tc.payload))
			checkVerify(t, err, tc.wantErr)
		})
	}
}

// TestStandardWebhooksSignature checks the verification against the
// vector of the Standard Webhooks libraries' tests, with the clock set to
// the vector's timestamp, and the replay window around it.
func TestStandardWebhooksSignature(t *testing.T) {
	const (
		secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id      = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		stamp   = "1614265330"
		payload = `{"test": 2432232314}`
		good    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	at := time.Unix(1614265330, 0)
	s, err := newStandardWebhooksSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := "v1," + s.sign(id, 1614265330, []byte(payload)); got != good {
		t.Fatalf("sign = %s, want %s", got, good)
	}
	tests := []struct {
		name                 string
		id, stamp, signature string
		payload              string
		now                  time.Time
		wantErr              string
	}{
		{"the libraries' vector", id, stamp, good, payload, at, ""},
		{"among other signatures", id, stamp, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,x " + good + " v1a,abc", payload, at, ""},
		{"extra blanks", id, stamp, "  " + good + "  ", payload, at, ""},
		{"5m old", id, stamp, good, payload, at.Add(5 * time.Minute), ""},
		{"5m ahead", id, stamp, good, payload, at.Add(-5 * time.Minute), ""},
		{"5m1s old", id, stamp, good, payload, at.Add(5*time.Minute + time.Second), "more than 5m before Hindsight's clock"},
		{"5m1s ahead", id, stamp, good, payload, at.Add(-5*time.Minute - time.Second), "more than 5m after Hindsight's clock"},
		{"replay message", id, stamp, good, payload, at.Add(time.Hour), "webhook-timestamp 1614265330 (2021-02-25T15:02:10Z) is more than 5m before Hindsight's clock (2021-02-25T16:02:10Z): outside the replay window"},
		{"other payload", id, stamp, good, `{"test": 2432232315}`, at, "does not match"},
		{"other id", "msg_other", stamp, good, payload, at, "does not match"},
		{"other timestamp", id, "1614265331", good, payload, at, "does not match"},
		{"leading zero signs the same number", id, "01614265330", good, payload, at, ""},
		{"version v2", id, stamp, strings.Replace(good, "v1,", "v2,", 1), payload, at, "does not match"},
		{"no version", id, stamp, strings.TrimPrefix(good, "v1,"), payload, at, "does not match"},
		{"empty signature", id, stamp, "", payload, at, "does not match"},
		{"no id", "", stamp, good, payload, at, "webhook-id and webhook-timestamp"},
		{"no timestamp", id, "", good, payload, at, "webhook-id and webhook-timestamp"},
		{"timestamp in milliseconds", id, "1614265330000", good, payload, at, "does not match"},
		{"timestamp not a number", id, "yesterday", good, payload, at, "not a time in Unix seconds"},
		{"timestamp out of range", id, "99999999999999999999", good, payload, at, "not a time in Unix seconds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.verifyAt(tc.id, tc.stamp, tc.signature, []byte(tc.payload), tc.now)
			checkVerify(t, err, tc.wantErr)
		})
	}
	t.Run("through the headers", func(t *testing.T) {
		h := http.Header{}
		h.Set("Webhook-Id", id)
		h.Set("Webhook-Timestamp", stamp)
		h.Set("Webhook-Signature", good)
		checkVerify(t, s.verify(h, []byte(payload), at), "")
	})
}

func TestNewStandardWebhooksSigner(t *testing.T) {
	for _, tc := range []struct{ secret, wantErr string }{
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""},
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "base64"},
		{"whsec_", "empty"},
		{"whsec_!!!!", "base64"},
	} {
		_, err := newStandardWebhooksSigner(tc.secret)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("newStandardWebhooksSigner(%q) = %v, want error %q", tc.secret, err, tc.wantErr)
		}
	}
}

// checkVerify asserts that err is nil when wantErr is empty, and else a
// 401 unauthorized *requestError containing wantErr.
func checkVerify(t *testing.T, err error, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("verify = %v, want it verified", err)
		}
		return
	}
	var re *requestError
	if !errors.As(err, &re) || re.status != http.StatusUnauthorized || re.reason != reasonUnauthorized {
		t.Fatalf("verify = %#v, want a 401 unauthorized *requestError", err)
	}
	if !strings.Contains(re.msg, wantErr) {
		t.Errorf("message %q, want it to contain %q", re.msg, wantErr)
	}
}
