package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

const (
	amPath     = "/hooks/alertmanager"
	deployPath = "/hooks/deploy"
	notesPath  = "/api/v1/incidents/i-checkout-1/notes"
)

var goodDeploy = `{"service":"checkout","status":"succeeded","version":"v2.3.1"}`

// TestRefused sends every kind of caller mistake and checks the status,
// that the message names the problem, and that nothing was published.
func TestRefused(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		body       string
		header     map[string]string
		maxBody    int64
		wantStatus int
		wantErr    string
	}{
		// Alertmanager.
		{name: "am empty body", path: amPath, body: "", wantStatus: 400, wantErr: "empty"},
		{name: "am truncated JSON", path: amPath, body: `{"version":"4","alerts":[`, wantStatus: 400, wantErr: "malformed JSON"},
		{name: "am syntax error", path: amPath, body: `{"version":"4",,}`, wantStatus: 400, wantErr: "offset 16"},
		{name: "am trailing data", path: amPath, body: string(fixture(t, "01-first-firing.json")) + `}`, wantStatus: 400, wantErr: "after the object"},
		{name: "am not an object", path: amPath, body: `[]`, wantStatus: 400, wantErr: "want an object"},
		{name: "am alerts not a list", path: amPath, body: `{"version":"4","alerts":"x"}`, wantStatus: 400, wantErr: `field "alerts": got JSON string, want array`},
		{name: "am labels not an object", path: amPath, body: `{"version":"4","alerts":[{"labels":[]}]}`, wantStatus: 400, wantErr: `alerts[0]: field "labels"`},
		{name: "am bad startsAt", path: amPath, body: `{"version":"4","alerts":[{"labels":{"a":"b"},"startsAt":"2026-11-22T04:00:00Z"},{"startsAt":"yesterday"}]}`, wantStatus: 400, wantErr: `alerts[1]: startsAt: "yesterday" is not an RFC 3339 time`},
		{name: "am endsAt a number", path: amPath, body: `{"version":"4","alerts":[{"endsAt":5}]}`, wantStatus: 400, wantErr: "alerts[0]: endsAt: 5"},
		{name: "am version missing", path: amPath, body: `{"alerts":[]}`, wantStatus: 400, wantErr: `"version" is missing`},
		{name: "am version 3", path: amPath, body: strings.Replace(string(fixture(t, "01-first-firing.json")), `"version": "4"`, `"version": "3"`, 1), wantStatus: 400, wantErr: `version "3"`},
		{name: "am no alerts", path: amPath, body: `{"version":"4","alerts":[]}`, wantStatus: 400, wantErr: `"alerts" is missing or empty`},
		{name: "am invalid UTF-8", path: amPath, body: "{\"version\":\"4\",\"receiver\":\"\xff\"}", wantStatus: 400, wantErr: "not valid UTF-8 (first bad byte at offset 27)"},
		{name: "am text/plain", path: amPath, body: string(fixture(t, "01-first-firing.json")), header: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415, wantErr: `"text/plain"`},
		{name: "am latin1", path: amPath, body: string(fixture(t, "01-first-firing.json")), header: map[string]string{"Content-Type": "application/json; charset=ISO-8859-1"}, wantStatus: 415, wantErr: `charset "ISO-8859-1"`},
		{name: "am bad media type", path: amPath, body: string(fixture(t, "01-first-firing.json")), header: map[string]string{"Content-Type": "application/json; ;"}, wantStatus: 415, wantErr: "not supported"},
		{name: "am too large", path: amPath, body: string(fixture(t, "01-first-firing.json")), maxBody: 512, wantStatus: 413, wantErr: "exceeds the limit of 512 bytes"},

		// Deploy.
		{name: "deploy unknown field", path: deployPath, body: `{"sevice":"checkout","status":"started"}`, wantStatus: 400, wantErr: `unknown field "sevice"`},
		{name: "deploy trailing data", path: deployPath, body: goodDeploy + ` {"service":"x"}`, wantStatus: 400, wantErr: "after the object"},
		{name: "deploy trailing garbage", path: deployPath, body: goodDeploy + `}`, wantStatus: 400, wantErr: "after the object"},
		{name: "deploy missing service", path: deployPath, body: `{"status":"started"}`, wantStatus: 400, wantErr: `"service" is missing`},
		{name: "deploy blank service", path: deployPath, body: `{"service":"  ","status":"started"}`, wantStatus: 400, wantErr: `"service" is missing`},
		{name: "deploy missing status", path: deployPath, body: `{"service":"checkout"}`, wantStatus: 400, wantErr: `"status" is missing`},
		{name: "deploy bad status", path: deployPath, body: `{"service":"checkout","status":"done"}`, wantStatus: 400, wantErr: `"done" is not one of started, succeeded, failed, rolled_back`},
		{name: "deploy bad time", path: deployPath, body: `{"service":"checkout","status":"started","time":"10:42"}`, wantStatus: 400, wantErr: `field "time": "10:42"`},
		{name: "deploy version a number", path: deployPath, body: `{"service":"checkout","status":"started","version":2}`, wantStatus: 400, wantErr: `field "version": got JSON number, want string`},
		{name: "deploy malformed", path: deployPath, body: `{"service":"checkout",`, wantStatus: 400, wantErr: "malformed JSON"},
		{name: "deploy form", path: deployPath, body: "service=checkout", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, wantStatus: 415, wantErr: "application/json"},
		{name: "deploy too large", path: deployPath, body: `{"service":"checkout","status":"started","description":"` + strings.Repeat("x", 2000) + `"}`, maxBody: 1024, wantStatus: 413, wantErr: "exceeds the limit of 1024 bytes"},

		// Notes.
		{name: "note missing text", path: notesPath, body: `{"author":"alice"}`, wantStatus: 400, wantErr: `"text" is missing`},
		{name: "note blank text", path: notesPath, body: `{"text":" \n\t "}`, wantStatus: 400, wantErr: `"text" is missing or blank`},
		{name: "note text too long", path: notesPath, body: `{"text":"` + strings.Repeat("x", 10_001) + `"}`, wantStatus: 400, wantErr: "10001 bytes: at most 10000"},
		{name: "note bad time", path: notesPath, body: `{"text":"rolled back","time":"now"}`, wantStatus: 400, wantErr: `field "time": "now"`},
		{name: "note unknown field", path: notesPath, body: `{"text":"x","incident":"i-1"}`, wantStatus: 400, wantErr: `unknown field "incident"`},
		{name: "note unknown incident", path: "/api/v1/incidents/i-nope/notes", body: `{"text":"x"}`, wantStatus: 404, wantErr: `incident "i-nope" not found`},
		{name: "note xml", path: notesPath, body: `<note/>`, header: map[string]string{"Content-Type": "application/xml"}, wantStatus: 415, wantErr: "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{MaxBodyBytes: tc.maxBody, MaxAlertmanagerBodyBytes: tc.maxBody})
			r := post(t, srv.URL+tc.path, []byte(tc.body), tc.header)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", r.status, r.raw, tc.wantStatus)
			}
			if !strings.Contains(r.err.Error, tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", r.err.Error, tc.wantErr)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if n := pub.callCount(); n != 0 {
				t.Errorf("Publish called %d times, want 0", n)
			}
		})
	}
}

// TestAccepted covers the media types and bodies that must be accepted.
func TestAccepted(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   string
		header map[string]string
		status int
	}{
		{name: "json with charset", path: amPath, body: string(fixture(t, "01-first-firing.json")), header: map[string]string{"Content-Type": "application/json; charset=UTF-8"}, status: 200},
		{name: "no content type", path: deployPath, body: goodDeploy, header: map[string]string{"Content-Type": ""}, status: 200},
		{name: "trailing whitespace", path: deployPath, body: goodDeploy + "\n\n", status: 200},
		{name: "unknown Alertmanager fields", path: amPath, body: strings.Replace(string(fixture(t, "01-first-firing.json")), `"version"`, `"futureField": {"x": 1}, "version"`, 1), status: 200},
		{name: "note", path: notesPath, body: `{"text":"rolled back"}`, status: 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{})
			r := post(t, srv.URL+tc.path, []byte(tc.body), tc.header)
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.raw, tc.status)
			}
			if got := len(pub.published()); got != r.ok.Accepted || got == 0 {
				t.Errorf("published %d events, answer says %d", got, r.ok.Accepted)
			}
		})
	}
}

// TestServerErrors checks that our failures are 5xx, and that an absent
// broker is a 503 with Retry-After, so that senders retry.
func TestServerErrors(t *testing.T) {
	unavailable := fmt.Errorf("publish to HINDSIGHT_EVENTS: %w", hindsight.ErrUnavailable)
	block := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name       string
		path       string
		body       string
		publisher  *recordingPublisher
		incidents  ingest.Incidents
		wantStatus int
		wantErr    string
	}{
		{name: "am broker unavailable", path: amPath, body: string(fixture(t, "02-second-alert-joins.json")), publisher: &recordingPublisher{err: unavailable}, wantStatus: 503, wantErr: "unavailable"},
		{name: "deploy broker unavailable", path: deployPath, body: goodDeploy, publisher: &recordingPublisher{err: unavailable}, wantStatus: 503, wantErr: "unavailable"},
		{name: "note broker unavailable", path: notesPath, body: `{"text":"x"}`, publisher: &recordingPublisher{err: unavailable}, wantStatus: 503, wantErr: "unavailable"},
		{name: "publish timeout", path: deployPath, body: goodDeploy, publisher: &recordingPublisher{publish: block}, wantStatus: 503, wantErr: "unavailable"},
		{name: "other publish error", path: deployPath, body: goodDeploy, publisher: &recordingPublisher{err: errors.New("stream sealed")}, wantStatus: 500, wantErr: "internal error"},
		{name: "incident store unavailable", path: notesPath, body: `{"text":"x"}`, incidents: incidentMap{err: fmt.Errorf("bolt: %w", hindsight.ErrUnavailable)}, wantStatus: 503, wantErr: "unavailable"},
		{name: "incident store broken", path: notesPath, body: `{"text":"x"}`, incidents: incidentMap{err: errors.New("bolt: corrupt page")}, wantStatus: 500, wantErr: "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := ingest.Options{Incidents: tc.incidents, PublishTimeout: 50 * time.Millisecond}
			if tc.publisher != nil {
				opts.Publisher = tc.publisher
			}
			srv, pub := newServer(t, opts)
			r := post(t, srv.URL+tc.path, []byte(tc.body), nil)
			if r.status != tc.wantStatus || !strings.Contains(r.err.Error, tc.wantErr) {
				t.Fatalf("status %d error %q, want %d with %q", r.status, r.err.Error, tc.wantStatus, tc.wantErr)
			}
			got := r.header.Get("Retry-After")
			if want := map[bool]string{true: "5", false: ""}[tc.wantStatus == 503]; got != want {
				t.Errorf("Retry-After %q, want %q", got, want)
			}
			if n := len(pub.published()); n != 0 {
				t.Errorf("%d events recorded, want 0", n)
			}
		})
	}
}

func TestMethodAndRoutes(t *testing.T) {
	t.Run("GET is 405", func(t *testing.T) {
		srv, _ := newServer(t, ingest.Options{})
		resp, err := http.Get(srv.URL + amPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", resp.StatusCode)
		}
	})
	t.Run("no notes route without Incidents", func(t *testing.T) {
		h, err := ingest.New(ingest.Options{Publisher: &recordingPublisher{}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		if r := post(t, srv.URL+notesPath, []byte(`{"text":"x"}`), nil); r.status != http.StatusNotFound {
			t.Errorf("status %d, want 404", r.status)
		}
		if got, want := strings.Join(h.Routes(), ","), ingest.RouteAlertmanager+","+ingest.RouteDeploy+","+ingest.RouteGitHub; got != want {
			t.Errorf("routes %s, want %s", got, want)
		}
	})
	t.Run("mounted on another mux", func(t *testing.T) {
		pub := &recordingPublisher{}
		h, err := ingest.New(ingest.Options{Publisher: pub, Incidents: incidentMap{incidents: map[string]*hindsight.Incident{testIncident.ID: testIncident}}})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		for _, p := range h.Routes() {
			mux.Handle(p, h)
		}
		mux.HandleFunc("GET /api/v1/incidents/{id}", func(w http.ResponseWriter, r *http.Request) {})
		srv := httptest.NewServer(mux)
		defer srv.Close()
		if r := post(t, srv.URL+notesPath, []byte(`{"text":"x"}`), nil); r.status != http.StatusCreated {
			t.Errorf("status %d (%s), want 201", r.status, r.raw)
		}
	})
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    ingest.Options
		wantErr string
	}{
		{name: "no publisher", opts: ingest.Options{}, wantErr: "Publisher is required"},
		{name: "username without password", opts: ingest.Options{Publisher: &recordingPublisher{}, Auth: ingest.AuthConfig{Deploy: ingest.Credentials{Username: "ci"}}}, wantErr: "deploy credentials: basic auth needs both"},
		{name: "password without username", opts: ingest.Options{Publisher: &recordingPublisher{}, Auth: ingest.AuthConfig{API: ingest.Credentials{Password: "pw"}}}, wantErr: "api credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ingest.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
