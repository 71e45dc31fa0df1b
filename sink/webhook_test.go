package sink

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hindsight-sre/hindsight"
)

// Text from alerts is untrusted: it must not break the JSON, ping a
// Slack channel, or run on for pages.
func TestWebhookSummaryOfUntrustedText(t *testing.T) {
	w, err := newWebhook(WebhookOptions{URL: "https://hooks.example.com/x"}, Options{ExternalURL: "https://h.example.com/", Now: time.Now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 22, 4, 8, 14, 0, time.UTC)
	end := start.Add(24 * time.Minute)
	inc := &hindsight.Incident{ID: "inc-1", StartedAt: start, ResolvedAt: &end}
	for _, tc := range []struct {
		name, title string
		want        string // in the text
	}{
		{"quotes and newlines", "Disk \"full\"\n\t}{ on db", `Disk "full"  }{ on db`},
		{"slack markup", "<!channel> <https://evil|click> & co", "&lt;!channel&gt; &lt;https://evil|click&gt; &amp; co"},
		{"long", strings.Repeat("é", 1000), strings.Repeat("é", maxTitle-1) + "…"},
		{"invalid utf-8", "bad \xff byte", "bad \uFFFD byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := hindsight.Notice{Incident: "inc-1", Change: hindsight.NoticeResolved, Status: hindsight.StatusResolved,
				Title: tc.title, Service: "db", Severity: "page"}
			body, err := json.Marshal(w.summary(n, inc))
			if err != nil {
				t.Fatal(err)
			}
			var s Summary
			if err := json.Unmarshal(body, &s); err != nil || !json.Valid(body) {
				t.Fatalf("posted invalid JSON %s: %v", body, err)
			}
			want := "Resolved: " + tc.want + " (db, page) after 24m — https://h.example.com/incidents/inc-1"
			if s.Text != want {
				t.Fatalf("text = %q, want %q", s.Text, want)
			}
			if utf8.RuneCountInString(s.Title) > maxTitle {
				t.Fatalf("title has %d characters, want at most %d", utf8.RuneCountInString(s.Title), maxTitle)
			}
			if *s.DurationSeconds != 24*60 {
				t.Fatalf("duration_seconds = %v, want 1440", *s.DurationSeconds)
			}
		})
	}
}

func TestWebhookSkipsOldChanges(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	start := now.Add(-3 * time.Hour)
	recent, old := now.Add(-10*time.Minute), now.Add(-2*time.Hour)
	for _, tc := range []struct {
		name     string
		resolved time.Time
		at       time.Time // the notice's: when Hindsight learned of it
		skip     time.Duration
		posts    bool
	}{
		{"recent", recent, time.Time{}, 0, true},
		{"old", old, time.Time{}, 0, false},
		{"old, never skip", old, time.Time{}, -1, true},
		// Resolved two hours ago by the alert's own time, but only
		// received now (Alertmanager was down): news for the channel.
		{"old, learned now", old, recent, 0, true},
		// A refold of the history: the correlator's watermark is old.
		{"recent, refolded from an old stream", recent, old, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := newWebhook(WebhookOptions{URL: "http://127.0.0.1:1/", SkipOlderThan: tc.skip, Timeout: 100 * time.Millisecond},
				Options{Now: func() time.Time { return now }, Logger: discard})
			if err != nil {
				t.Fatal(err)
			}
			inc := &hindsight.Incident{ID: "inc-1", StartedAt: start, ResolvedAt: &tc.resolved}
			err = w.deliver(t.Context(), hindsight.Notice{Incident: "inc-1", Change: hindsight.NoticeResolved, At: tc.at}, inc)
			// Posting fails (nothing listens on port 1); skipping does not.
			if posted := err != nil; posted != tc.posts {
				t.Fatalf("deliver = %v, want a post: %v", err, tc.posts)
			}
		})
	}
}

func TestFileNameIsSafe(t *testing.T) {
	start := time.Date(2026, 11, 22, 23, 59, 0, 0, time.FixedZone("x", -3600))
	for _, tc := range []struct{ service, want string }{
		{"checkout", "2026-11-23-checkout-inc-1.md"},
		{"../../etc/passwd", "2026-11-23-etc-passwd-inc-1.md"},
		{"payments / EU west", "2026-11-23-payments-EU-west-inc-1.md"},
		{"", "2026-11-23-no-service-inc-1.md"},
		{strings.Repeat("a", 300), "2026-11-23-" + strings.Repeat("a", 64) + "-inc-1.md"},
	} {
		if got := FileName(&hindsight.Incident{ID: "inc-1", Service: tc.service, StartedAt: start}); got != tc.want {
			t.Errorf("FileName(service %q) = %s, want %s", tc.service, got, tc.want)
		}
	}
}

var discard = slog.New(slog.DiscardHandler)
