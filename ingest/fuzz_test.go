package ingest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hindsight-sre/hindsight"
)

var fuzzReceivedAt = time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)

func addFixtureSeeds(f *testing.F) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "alertmanager-0.25", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkEvent asserts what every event ingest makes must satisfy.
func checkEvent(t *testing.T, ev hindsight.Event) {
	t.Helper()
	if ev.ID == "" || ev.Kind == "" || ev.Source == "" {
		t.Fatalf("event without ID, kind or source: %+v", ev)
	}
	if ev.Time.IsZero() || ev.Time.Location() != time.UTC || ev.ReceivedAt.Location() != time.UTC {
		t.Fatalf("event time %v (received %v), want non-zero UTC", ev.Time, ev.ReceivedAt)
	}
	if !utf8.ValidString(ev.Summary) || len(ev.Summary) > maxSummary {
		t.Fatalf("summary %q: want valid UTF-8 of at most %d bytes", ev.Summary, maxSummary)
	}
	if _, err := json.Marshal(ev); err != nil {
		t.Fatalf("event does not marshal: %v", err)
	}
}

func FuzzAlertmanagerPayload(f *testing.F) {
	addFixtureSeeds(f)
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":"2026-11-22T04:00:00+02:00","endsAt":"2026-11-22T03:00:00Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{},"startsAt":"yesterday"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, rejected, err := parseAlertmanager(body, fuzzReceivedAt)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status/100 != 4 || re.reason == "" || re.msg == "" {
				t.Fatalf("error %#v: want a *requestError with a 4xx, a reason and a message", err)
			}
			if len(events) != 0 {
				t.Fatalf("%d events beside error %v", len(events), err)
			}
			return
		}
		if len(events) == 0 {
			t.Fatal("no events and no error")
		}
		for _, ev := range events {
			checkEvent(t, ev)
			if !ev.Kind.IsAlert() || ev.Alert == nil || ev.Alert.Fingerprint == "" {
				t.Fatalf("alert event %+v without alert kind, details or fingerprint", ev)
			}
			if ev.Kind == hindsight.KindAlertResolved && ev.Time.Before(ev.Alert.StartsAt) {
				t.Fatalf("resolved at %v before it started at %v", ev.Time, ev.Alert.StartsAt)
			}
		}
		for _, r := range rejected {
			if r.Error == "" || r.Index < 0 {
				t.Fatalf("rejection %+v without index or reason", r)
			}
		}
		again, againRejected, err := parseAlertmanager(body, fuzzReceivedAt)
		if err != nil || !reflect.DeepEqual(again, events) || !reflect.DeepEqual(againRejected, rejected) {
			t.Fatalf("second parse differs: %v\n%+v\nwant\n%+v", err, again, events)
		}
		// The ID does not depend on when the notification arrived.
		later, _, _ := parseAlertmanager(body, fuzzReceivedAt.Add(time.Hour))
		for i := range later {
			if later[i].ID != events[i].ID {
				t.Fatalf("ID %s became %s an hour later", events[i].ID, later[i].ID)
			}
		}
	})
}

func FuzzDeployPayload(f *testing.F) {
	f.Add([]byte(`{"id":"run-1","service":"checkout","environment":"prod","version":"v2.3.1","status":"succeeded","time":"2026-11-22T03:55:00Z","actor":"alice","commit":"9f1c2ab","url":"https://ci/1","description":"d"}`))
	f.Add([]byte(`{"service":"checkout","status":"rolled_back"}`))
	f.Add([]byte(`{"service":"checkout","status":"started","time":"2026-11-22T04:55:00.123+01:00"} `))
	f.Add([]byte(`{"service":"checkout","status":"bogus","x":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseDeploy(body, fuzzReceivedAt)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status != 400 || re.reason == "" || re.msg == "" {
				t.Fatalf("error %#v: want a *requestError with a 400, a reason and a message", err)
			}
			return
		}
		checkEvent(t, ev)
		if !ev.Kind.IsDeploy() || ev.Deploy == nil || ev.Service == "" || ev.Labels["service"] != ev.Service {
			t.Fatalf("deploy event %+v without deploy kind, details or service", ev)
		}
		again, err := parseDeploy(body, fuzzReceivedAt)
		if err != nil || !reflect.DeepEqual(again, ev) {
			t.Fatalf("second parse differs: %v\n%+v\nwant\n%+v", err, again, ev)
		}
	})
}
