package hindsight_test

import (
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// Event IDs are the deduplication contract with the stream: they must
// never change for the same fact. These values are pinned.
func TestEventIDsAreStable(t *testing.T) {
	start := time.Date(2026, 11, 22, 4, 8, 14, 0, time.UTC)
	for _, tc := range []struct {
		name, got, want string
	}{
		{"firing", hindsight.AlertEventID("f78816deac5e68e9", start, "firing"), "a-76faa0569ae7f210aac6ded86913b231"},
		{"same instant in another zone", hindsight.AlertEventID("f78816deac5e68e9", start.In(time.FixedZone("CET", 3600)), "firing"), "a-76faa0569ae7f210aac6ded86913b231"},
		{"resolved", hindsight.AlertEventID("f78816deac5e68e9", start, "resolved"), "a-30bb9a59c5e60586e4f28085af4005b4"},
		{"deploy with an ID", hindsight.DeployEventID(hindsight.DeployDetails{ID: "run-812", Environment: "prod", Status: "succeeded"}, "checkout", start), "d-09a91d53b02f2043a4241f3584c4ea4c"},
		{"deploy without an ID", hindsight.DeployEventID(hindsight.DeployDetails{Version: "v2.3.1", Status: "started"}, "checkout", start), "d-a6e5604f3d8f42d7f80e738f94bbd9fc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %s, want %s", tc.got, tc.want)
			}
		})
	}
}

func TestDeployIDsSeparateServicesOfOneRun(t *testing.T) {
	d := hindsight.DeployDetails{ID: "run-812", Status: "succeeded"}
	if hindsight.DeployEventID(d, "checkout", time.Time{}) == hindsight.DeployEventID(d, "payments", time.Time{}) {
		t.Fatal("one pipeline run deploying two services gave one event ID")
	}
	started := d
	started.Status = "started"
	if hindsight.DeployEventID(d, "checkout", time.Time{}) == hindsight.DeployEventID(started, "checkout", time.Time{}) {
		t.Fatal("started and succeeded of one deploy gave one event ID")
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{45 * time.Second, "45s"}, {135 * time.Second, "2m15s"}, {24*time.Minute + 20*time.Second, "24m"}, {24 * time.Minute, "24m"}, {73 * time.Minute, "1h13m"}, {2 * time.Hour, "2h"},
		{51 * time.Hour, "2d3h"}, {48 * time.Hour, "2d"}, {-5 * time.Minute, "-5m"}, {0, "0s"},
	} {
		if got := hindsight.FormatDuration(tc.d); got != tc.want {
			t.Errorf("FormatDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	alert := &hindsight.AlertDetails{Fingerprint: "f", StartsAt: at}
	for _, tc := range []struct {
		name string
		e    hindsight.Event
		ok   bool
	}{
		{"firing", hindsight.Event{ID: "a", Kind: hindsight.KindAlertFiring, Time: at, Alert: alert}, true},
		{"no id", hindsight.Event{Kind: hindsight.KindAlertFiring, Time: at, Alert: alert}, false},
		{"no time", hindsight.Event{ID: "a", Kind: hindsight.KindAlertFiring, Alert: alert}, false},
		{"alert without details", hindsight.Event{ID: "a", Kind: hindsight.KindAlertFiring, Time: at}, false},
		{"resolved without endsAt", hindsight.Event{ID: "a", Kind: hindsight.KindAlertResolved, Time: at, Alert: alert}, false},
		{"deploy", hindsight.Event{ID: "d", Kind: hindsight.KindDeployFailed, Time: at, Service: "s", Deploy: &hindsight.DeployDetails{Status: "failed"}}, true},
		{"deploy kind and status disagree", hindsight.Event{ID: "d", Kind: hindsight.KindDeployFailed, Time: at, Service: "s", Deploy: &hindsight.DeployDetails{Status: "started"}}, false},
		{"deploy without details", hindsight.Event{ID: "d", Kind: hindsight.KindDeployFailed, Time: at, Service: "s"}, false},
		{"note without incident", hindsight.Event{ID: "n", Kind: hindsight.KindNote, Time: at, Note: &hindsight.NoteDetails{Text: "x"}}, false},
		{"unknown kind", hindsight.Event{ID: "x", Kind: "alert.exploded", Time: at}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.e.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
