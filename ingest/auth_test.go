package ingest_test

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-sre/hindsight/ingest"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAuth(t *testing.T) {
	bearerOnly := ingest.Credentials{BearerToken: "tok"}
	basicOnly := ingest.Credentials{Username: "am", Password: "pw"}
	both := ingest.Credentials{BearerToken: "tok", Username: "am", Password: "pw"}
	const (
		bearerChallenge = `Bearer realm="hindsight"`
		basicChallenge  = `Basic realm="hindsight", charset="UTF-8"`
	)
	tests := []struct {
		name          string
		creds         ingest.Credentials
		authorization string
		header        map[string]string // more headers
		body          string            // default: a good body
		wantStatus    int
		wantChallenge []string
	}{
		{name: "open endpoint", creds: ingest.Credentials{}, wantStatus: 200},
		{name: "bearer missing", creds: bearerOnly, wantStatus: 401, wantChallenge: []string{bearerChallenge}},
		{name: "bearer wrong", creds: bearerOnly, authorization: "Bearer nope", wantStatus: 401, wantChallenge: []string{bearerChallenge}},
		{name: "bearer prefix of token", creds: bearerOnly, authorization: "Bearer to", wantStatus: 401, wantChallenge: []string{bearerChallenge}},
		{name: "bearer right", creds: bearerOnly, authorization: "Bearer tok", wantStatus: 200},
		{name: "bearer scheme is case-insensitive", creds: bearerOnly, authorization: "bearer tok", wantStatus: 200},
		{name: "bearer token sent as basic", creds: bearerOnly, authorization: basic("tok", ""), wantStatus: 401, wantChallenge: []string{bearerChallenge}},
		{name: "basic missing", creds: basicOnly, wantStatus: 401, wantChallenge: []string{basicChallenge}},
		{name: "basic wrong password", creds: basicOnly, authorization: basic("am", "nope"), wantStatus: 401, wantChallenge: []string{basicChallenge}},
		{name: "basic wrong user", creds: basicOnly, authorization: basic("root", "pw"), wantStatus: 401, wantChallenge: []string{basicChallenge}},
		{name: "basic right", creds: basicOnly, authorization: basic("am", "pw"), wantStatus: 200},
		{name: "basic refuses bearer", creds: basicOnly, authorization: "Bearer pw", wantStatus: 401, wantChallenge: []string{basicChallenge}},
		{name: "both: bearer accepted", creds: both, authorization: "Bearer tok", wantStatus: 200},
		{name: "both: basic accepted", creds: both, authorization: basic("am", "pw"), wantStatus: 200},
		{name: "both: none sent, both offered", creds: both, wantStatus: 401, wantChallenge: []string{bearerChallenge, basicChallenge}},
		// Authentication comes before anything is read or checked.
		{name: "before content type", creds: bearerOnly, header: map[string]string{"Content-Type": "text/plain"}, wantStatus: 401, wantChallenge: []string{bearerChallenge}},
		{name: "before body size", creds: bearerOnly, body: strings.Repeat(" ", 2<<20), wantStatus: 401, wantChallenge: []string{bearerChallenge}},
		{name: "before JSON", creds: bearerOnly, body: "{", wantStatus: 401, wantChallenge: []string{bearerChallenge}},
	}
	endpoints := []struct {
		path string
		body string
		auth func(ingest.Credentials) ingest.AuthConfig
		ok   int
	}{
		{amPath, string(fixture(t, "01-first-firing.json")), func(c ingest.Credentials) ingest.AuthConfig { return ingest.AuthConfig{Alertmanager: c} }, 200},
		{deployPath, goodDeploy, func(c ingest.Credentials) ingest.AuthConfig { return ingest.AuthConfig{Deploy: c} }, 200},
		{notesPath, `{"text":"x"}`, func(c ingest.Credentials) ingest.AuthConfig { return ingest.AuthConfig{API: c} }, 201},
	}
	for _, ep := range endpoints {
		for _, tc := range tests {
			t.Run(ep.path+"/"+tc.name, func(t *testing.T) {
				srv, pub := newServer(t, ingest.Options{Auth: ep.auth(tc.creds)})
				body := tc.body
				if body == "" {
					body = ep.body
				}
				header := map[string]string{"Authorization": tc.authorization}
				for k, v := range tc.header {
					header[k] = v
				}
				r := post(t, srv.URL+ep.path, []byte(body), header)
				want := tc.wantStatus
				if want == 200 {
					want = ep.ok
				}
				if r.status != want {
					t.Fatalf("status %d (%s), want %d", r.status, r.raw, want)
				}
				if got := r.header.Values("WWW-Authenticate"); !slices.Equal(got, tc.wantChallenge) {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.wantChallenge)
				}
				if want == 401 {
					if !strings.Contains(r.err.Error, "credentials") {
						t.Errorf("error %q, want it to mention credentials", r.err.Error)
					}
					if n := pub.callCount(); n != 0 {
						t.Errorf("Publish called %d times, want 0", n)
					}
				}
			})
		}
	}
}

// TestAuthOtherEndpointsUnaffected checks that each endpoint uses its own
// credentials.
func TestAuthOtherEndpointsUnaffected(t *testing.T) {
	srv, _ := newServer(t, ingest.Options{Auth: ingest.AuthConfig{Alertmanager: ingest.Credentials{BearerToken: "am-token"}}})
	if r := post(t, srv.URL+deployPath, []byte(goodDeploy), nil); r.status != http.StatusOK {
		t.Errorf("deploy without credentials: status %d, want 200 (only Alertmanager is protected)", r.status)
	}
	if r := post(t, srv.URL+deployPath, []byte(goodDeploy), map[string]string{"Authorization": "Bearer am-token"}); r.status != http.StatusOK {
		t.Errorf("deploy with a stray token: status %d, want 200", r.status)
	}
}

func TestUnprotected(t *testing.T) {
	tok := ingest.Credentials{BearerToken: "t"}
	human := []string{ingest.RouteNotes, ingest.RouteDeclare, ingest.RouteDraft, ingest.RouteHidden, ingest.RouteState, ingest.RouteEnd}
	tests := []struct {
		name string
		auth ingest.AuthConfig
		want []string
	}{
		{name: "nothing configured", auth: ingest.AuthConfig{}, want: append([]string{ingest.RouteAlertmanager, ingest.RouteDeploy, ingest.RouteGitHub}, human...)},
		{name: "hooks protected", auth: ingest.AuthConfig{Alertmanager: tok, Deploy: ingest.Credentials{Username: "u", Password: "p"}}, want: human},
		// Without its own secret, the GitHub route takes the deploy route's credentials.
		{name: "all protected", auth: ingest.AuthConfig{Alertmanager: tok, Deploy: tok, API: tok}, want: nil},
		{name: "github secret only", auth: ingest.AuthConfig{GitHubSecret: "s"}, want: append([]string{ingest.RouteAlertmanager, ingest.RouteDeploy}, human...)},
		{name: "deploy signed only", auth: ingest.AuthConfig{DeployStandardWebhooksSecret: swSecret}, want: append([]string{ingest.RouteAlertmanager}, human...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.auth.Unprotected(); !slices.Equal(got, tc.want) {
				t.Errorf("Unprotected() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCredentialsConfigured(t *testing.T) {
	tests := []struct {
		creds ingest.Credentials
		want  bool
	}{
		{ingest.Credentials{}, false},
		{ingest.Credentials{BearerToken: "t"}, true},
		{ingest.Credentials{Username: "u", Password: "p"}, true},
	}
	for _, tc := range tests {
		if got := tc.creds.Configured(); got != tc.want {
			t.Errorf("%+v.Configured() = %v, want %v", tc.creds, got, tc.want)
		}
	}
}
