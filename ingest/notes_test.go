package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

func TestNotes(t *testing.T) {
	api := ingest.AuthConfig{API: ingest.Credentials{Username: "bob", Password: "pw", BearerToken: "api-token"}}
	longLine := strings.Repeat("é", 300) // 600 bytes, 2 bytes a rune
	tests := []struct {
		name        string
		path        string
		body        string
		basicUser   string // basic auth, else the bearer token
		wantTime    time.Time
		wantText    string
		wantSummary string
		wantAuthor  string
	}{
		{
			name:        "text, time and author",
			path:        notesPath,
			body:        `{"text":"  Rolled back v2.3.1\nerror rate back to normal  ","time":"2026-11-22T04:12:00Z","author":"alice"}`,
			wantTime:    time.Date(2026, 11, 22, 4, 12, 0, 0, time.UTC),
			wantText:    "Rolled back v2.3.1\nerror rate back to normal",
			wantSummary: "Rolled back v2.3.1…",
			wantAuthor:  "alice",
		},
		{
			name:        "time defaults to received, author to the basic auth user",
			path:        notesPath,
			body:        `{"text":"paged the DB team"}`,
			basicUser:   "bob",
			wantTime:    receivedAt,
			wantText:    "paged the DB team",
			wantSummary: "paged the DB team",
			wantAuthor:  "bob",
		},
		{
			name:        "author given wins over basic auth",
			path:        notesPath,
			body:        `{"text":"x","author":"carol"}`,
			basicUser:   "bob",
			wantTime:    receivedAt,
			wantText:    "x",
			wantSummary: "x",
			wantAuthor:  "carol",
		},
		{
			name:        "merged incident ID resolves to the survivor",
			path:        "/api/v1/incidents/i-merged-away/notes",
			body:        `{"text":"x"}`,
			wantTime:    receivedAt,
			wantText:    "x",
			wantSummary: "x",
		},
		{
			name:        "long line summarised, full text kept",
			path:        notesPath,
			body:        `{"text":"` + longLine + `"}`,
			wantTime:    receivedAt,
			wantText:    longLine,
			wantSummary: strings.Repeat("é", 98) + "…",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{Auth: api})
			req, err := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.basicUser != "" {
				req.SetBasicAuth(tc.basicUser, "pw")
			} else {
				req.Header.Set("Authorization", "Bearer api-token")
			}
			r := do(t, req)
			if r.status != http.StatusCreated {
				t.Fatalf("status %d (%s), want 201", r.status, r.raw)
			}
			got := pub.published()
			if len(got) != 1 {
				t.Fatalf("published %d events, want 1", len(got))
			}
			ev := got[0]
			if !strings.HasPrefix(ev.ID, "n-") || r.ok.Events[0] != ev.ID {
				t.Errorf("ID %q answered as %v, want a new n- ID", ev.ID, r.ok.Events)
			}
			if ev.Kind != hindsight.KindNote || ev.Source != hindsight.SourceNote || ev.Service != "checkout" {
				t.Errorf("kind %s source %s service %s, want note, note, checkout", ev.Kind, ev.Source, ev.Service)
			}
			if !ev.Time.Equal(tc.wantTime) || ev.Time.Location() != time.UTC || !ev.ReceivedAt.Equal(receivedAt) {
				t.Errorf("time %v received %v, want %v UTC and %v", ev.Time, ev.ReceivedAt, tc.wantTime, receivedAt)
			}
			if ev.Summary != tc.wantSummary || !utf8.ValidString(ev.Summary) {
				t.Errorf("summary %q, want %q", ev.Summary, tc.wantSummary)
			}
			want := hindsight.NoteDetails{IncidentID: testIncident.ID, Key: testIncident.Key, Anchor: testIncident.Anchor, Text: tc.wantText, Author: tc.wantAuthor}
			if ev.Note == nil || *ev.Note != want {
				t.Errorf("note %+v, want %+v", ev.Note, want)
			}
		})
	}
}

// TestNotesAreNotDeduplicated documents that a note has no natural
// identity: the same text twice is two events.
func TestNotesAreNotDeduplicated(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{})
	a := post(t, srv.URL+notesPath, []byte(`{"text":"x","time":"2026-11-22T04:12:00Z"}`), nil)
	b := post(t, srv.URL+notesPath, []byte(`{"text":"x","time":"2026-11-22T04:12:00Z"}`), nil)
	if a.status != 201 || b.status != 201 || a.ok.Events[0] == b.ok.Events[0] {
		t.Errorf("answers %+v and %+v, want two 201s with different IDs", a.ok, b.ok)
	}
	if n := len(pub.published()); n != 2 {
		t.Errorf("%d events, want 2", n)
	}
}
