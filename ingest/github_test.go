package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

const (
	gitHubPath   = "/hooks/github"
	gitHubSecret = "It's a Secret to Everybody"
)

// gitHubFixture reads a file of testdata/github.
func gitHubFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "github", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gitHubSign returns the X-Hub-Signature-256 GitHub sends for body.
func gitHubSign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// gitHubHeaders are the headers of one delivery, signed with secret
// unless it is empty.
func gitHubHeaders(event, secret string, body []byte) map[string]string {
	h := map[string]string{
		"X-GitHub-Event":    event,
		"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"User-Agent":        "GitHub-Hookshot/044aadd",
	}
	if secret != "" {
		h["X-Hub-Signature-256"] = gitHubSign(secret, body)
	}
	return h
}

// withStatus returns the fixture with deployment_status fields replaced.
func withStatus(t *testing.T, set map[string]any) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(gitHubFixture(t, "deployment_status.json"), &p); err != nil {
		t.Fatal(err)
	}
	st := p["deployment_status"].(map[string]any)
	for k, v := range set {
		if strings.HasPrefix(k, "deployment.") {
			p["deployment"].(map[string]any)[strings.TrimPrefix(k, "deployment.")] = v
			continue
		}
		st[k] = v
	}
	return mustJSON(t, p)
}

func TestGitHubDeploymentStatus(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{Auth: ingest.AuthConfig{GitHubSecret: gitHubSecret}})
	body := gitHubFixture(t, "deployment_status.json")
	r := post(t, srv.URL+gitHubPath, body, gitHubHeaders("deployment_status", gitHubSecret, body))
	if r.status != 200 {
		t.Fatalf("status %d (%s), want 200", r.status, r.raw)
	}
	at := time.Date(2026, 11, 22, 4, 12, 31, 0, time.UTC)
	d := hindsight.DeployDetails{
		ID:          "github-deployment-1874401236",
		Environment: "production",
		Version:     "v2.3.1",
		Status:      "succeeded",
		Actor:       "alice-acme",
		Commit:      "9f2c1ab5d7e04c3b8a6f1e2d3c4b5a6978877665",
		URL:         "https://github.com/acme/checkout/actions/runs/11872034417/job/33082755019",
		Description: "Rolled out to 12/12 pods",
	}
	want := hindsight.Event{
		ID:         hindsight.DeployEventID(d, "checkout", time.Time{}),
		Kind:       hindsight.KindDeploySucceeded,
		Source:     hindsight.SourceDeploy,
		Time:       at,
		ReceivedAt: receivedAt,
		Service:    "checkout",
		Labels:     map[string]string{"service": "checkout", "environment": "production"},
		Summary:    "Deploy of checkout v2.3.1 to production succeeded (by alice-acme)",
		Deploy:     &d,
	}
	got := pub.published()
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("published\n%+v\nwant\n%+v", got, want)
	}
	if r.ok.Accepted != 1 || r.ok.Events[0] != want.ID {
		t.Errorf("answer %+v, want event %s", r.ok, want.ID)
	}
}

// TestGitHubStates checks how each deployment_status state maps, and the
// fallbacks of service, version, actor, URL, description and time.
func TestGitHubStates(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]any
		want func(ev hindsight.Event) string // "" when ev is right
	}{
		{"pending is started", map[string]any{"state": "pending"}, kindIs(hindsight.KindDeployStarted)},
		{"queued is started", map[string]any{"state": "queued"}, kindIs(hindsight.KindDeployStarted)},
		{"in_progress is started", map[string]any{"state": "in_progress"}, kindIs(hindsight.KindDeployStarted)},
		{"failure is failed", map[string]any{"state": "failure"}, kindIs(hindsight.KindDeployFailed)},
		{"error is failed", map[string]any{"state": "error"}, kindIs(hindsight.KindDeployFailed)},
		{"payload service wins over the repository", map[string]any{"deployment.payload": map[string]any{"service": "payments", "replicas": 3}},
			fieldIs("service", func(ev hindsight.Event) string { return ev.Service }, "payments")},
		{"payload given as a JSON string", map[string]any{"deployment.payload": `{"service":"payments"}`},
			fieldIs("service", func(ev hindsight.Event) string { return ev.Service }, "payments")},
		{"payload service not a string", map[string]any{"deployment.payload": map[string]any{"service": 7}},
			fieldIs("service", func(ev hindsight.Event) string { return ev.Service }, "checkout")},
		{"ref is the sha: short sha", map[string]any{"deployment.ref": "9f2c1ab5d7e04c3b8a6f1e2d3c4b5a6978877665"},
			fieldIs("version", func(ev hindsight.Event) string { return ev.Deploy.Version }, "9f2c1ab")},
		{"no ref: short sha", map[string]any{"deployment.ref": ""},
			fieldIs("version", func(ev hindsight.Event) string { return ev.Deploy.Version }, "9f2c1ab")},
		{"branch ref", map[string]any{"deployment.ref": "main"},
			fieldIs("version", func(ev hindsight.Event) string { return ev.Deploy.Version }, "main")},
		{"no target_url: log_url", map[string]any{"target_url": "", "log_url": "https://ci.acme.example/runs/7"},
			fieldIs("url", func(ev hindsight.Event) string { return ev.Deploy.URL }, "https://ci.acme.example/runs/7")},
		{"no status creator: deployment creator", map[string]any{"creator": nil, "deployment.creator": map[string]any{"login": "bob"}},
			fieldIs("actor", func(ev hindsight.Event) string { return ev.Deploy.Actor }, "bob")},
		{"no status description: deployment description", map[string]any{"description": ""},
			fieldIs("description", func(ev hindsight.Event) string { return ev.Deploy.Description }, "Deploy v2.3.1")},
		{"no deployment environment: the status's", map[string]any{"deployment.environment": ""},
			fieldIs("environment", func(ev hindsight.Event) string { return ev.Deploy.Environment }, "production")},
		{"no updated_at: created_at", map[string]any{"updated_at": "", "created_at": "2026-11-22T04:11:00+01:00"},
			fieldIs("time", func(ev hindsight.Event) string { return ev.Time.Format(time.RFC3339) }, "2026-11-22T03:11:00Z")},
		{"no times: received", map[string]any{"updated_at": nil, "created_at": nil},
			fieldIs("time", func(ev hindsight.Event) string { return ev.Time.Format(time.RFC3339) }, receivedAt.Format(time.RFC3339))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{})
			body := withStatus(t, tc.set)
			r := post(t, srv.URL+gitHubPath, body, gitHubHeaders("deployment_status", "", body))
			if r.status != 200 {
				t.Fatalf("status %d (%s), want 200", r.status, r.raw)
			}
			got := pub.published()
			if len(got) != 1 {
				t.Fatalf("%d events published, want 1", len(got))
			}
			if err := got[0].Validate(); err != nil {
				t.Fatalf("invalid event: %v", err)
			}
			if msg := tc.want(got[0]); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func kindIs(k hindsight.Kind) func(hindsight.Event) string {
	return func(ev hindsight.Event) string {
		if ev.Kind != k || ev.Deploy.Status != strings.TrimPrefix(string(k), "deploy.") {
			return "kind " + string(ev.Kind) + " status " + ev.Deploy.Status + ", want " + string(k)
		}
		return ""
	}
}

func fieldIs(name string, get func(hindsight.Event) string, want string) func(hindsight.Event) string {
	return func(ev hindsight.Event) string {
		if got := get(ev); got != want {
			return name + " " + got + ", want " + want
		}
		return ""
	}
}

// TestGitHubOneDeploy checks that a redelivery collapses onto the event
// already recorded, and that the statuses of one deployment are one
// deploy: queued and in_progress are the same start.
func TestGitHubOneDeploy(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{})
	send := func(body []byte) reply {
		t.Helper()
		r := post(t, srv.URL+gitHubPath, body, gitHubHeaders("deployment_status", "", body))
		if r.status != 200 || len(r.ok.Events) != 1 {
			t.Fatalf("status %d (%s), want 200 with one event", r.status, r.raw)
		}
		return r
	}
	queued := send(withStatus(t, map[string]any{"id": 3925810901, "state": "queued", "updated_at": "2026-11-22T04:10:02Z"}))
	running := send(withStatus(t, map[string]any{"id": 3925810917, "state": "in_progress", "updated_at": "2026-11-22T04:10:40Z"}))
	success := send(gitHubFixture(t, "deployment_status.json"))
	redelivered := send(gitHubFixture(t, "deployment_status.json"))
	if running.ok.Events[0] != queued.ok.Events[0] || running.ok.Duplicates != 1 {
		t.Errorf("in_progress answer %+v, want queued's event %s as a duplicate", running.ok, queued.ok.Events[0])
	}
	if success.ok.Events[0] == queued.ok.Events[0] || success.ok.Duplicates != 0 {
		t.Errorf("success answer %+v, want a new event", success.ok)
	}
	if redelivered.ok.Events[0] != success.ok.Events[0] || redelivered.ok.Duplicates != 1 {
		t.Errorf("redelivery answer %+v, want success's event %s as a duplicate", redelivered.ok, success.ok.Events[0])
	}
	got := pub.published()
	if len(got) != 2 || got[0].Kind != hindsight.KindDeployStarted || got[1].Kind != hindsight.KindDeploySucceeded {
		t.Fatalf("published %+v, want started then succeeded", got)
	}
	if got[0].Deploy.ID != got[1].Deploy.ID || !got[0].Time.Equal(time.Date(2026, 11, 22, 4, 10, 2, 0, time.UTC)) {
		t.Errorf("started %+v and succeeded %+v: want one deploy ID, started at the first status", got[0].Deploy, got[1].Deploy)
	}
}

// TestGitHubNothingRecorded covers deliveries that answer 200 and
// publish nothing.
func TestGitHubNothingRecorded(t *testing.T) {
	tests := []struct {
		name, event string
		body        []byte
		want        ingest.IgnoredResponse
	}{
		{"ping", "ping", gitHubFixture(t, "ping.json"), ingest.IgnoredResponse{Ignored: "ping"}},
		{"push", "push", []byte(`{"ref":"refs/heads/main"}`), ingest.IgnoredResponse{Ignored: "push"}},
		{"deployment", "deployment", gitHubFixture(t, "deployment_status.json"), ingest.IgnoredResponse{Ignored: "deployment"}},
		{"inactive", "deployment_status", withStatus(t, map[string]any{"state": "inactive"}), ingest.IgnoredResponse{Ignored: "deployment_status"}},
		{"other event, body not even JSON", "issues", []byte(`not json`), ingest.IgnoredResponse{Ignored: "issues"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{Auth: ingest.AuthConfig{GitHubSecret: gitHubSecret}})
			r := post(t, srv.URL+gitHubPath, tc.body, gitHubHeaders(tc.event, gitHubSecret, tc.body))
			if r.status != 200 {
				t.Fatalf("status %d (%s), want 200", r.status, r.raw)
			}
			var got ingest.IgnoredResponse
			if err := json.Unmarshal([]byte(r.raw), &got); err != nil || got.Ignored != tc.want.Ignored || got.Reason == "" {
				t.Errorf("answer %s (%v), want ignored %q with a reason", r.raw, err, tc.want.Ignored)
			}
			if n := pub.callCount(); n != 0 {
				t.Errorf("Publish called %d times, want 0", n)
			}
		})
	}
}

// TestGitHubAuth checks that the signature is verified before anything
// else looks at the request, and that without a GitHub secret the route
// takes the deploy route's credentials.
func TestGitHubAuth(t *testing.T) {
	body := gitHubFixture(t, "deployment_status.json")
	signed := gitHubHeaders("deployment_status", gitHubSecret, body)
	with := func(h map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for hk, hv := range h {
			out[hk] = hv
		}
		out[k] = v
		return out
	}
	secretOnly := ingest.AuthConfig{GitHubSecret: gitHubSecret}
	deployToken := ingest.AuthConfig{Deploy: ingest.Credentials{BearerToken: "deploy-token"}}
	deployBasic := ingest.AuthConfig{Deploy: ingest.Credentials{Username: "github", Password: "pw"}}
	tests := []struct {
		name       string
		auth       ingest.AuthConfig
		body       []byte
		header     map[string]string
		maxBody    int64
		wantStatus int
		wantErr    string
	}{
		{name: "signed", auth: secretOnly, body: body, header: signed, wantStatus: 200},
		{name: "uppercase hex", auth: secretOnly, body: body, header: with(signed, "X-Hub-Signature-256", "sha256="+strings.ToUpper(strings.TrimPrefix(signed["X-Hub-Signature-256"], "sha256="))), wantStatus: 200},
		{name: "no signature", auth: secretOnly, body: body, header: with(signed, "X-Hub-Signature-256", ""), wantStatus: 401, wantErr: "missing X-Hub-Signature-256"},
		{name: "only the SHA-1 signature", auth: secretOnly, body: body, header: with(with(signed, "X-Hub-Signature-256", ""), "X-Hub-Signature", "sha1=0123"), wantStatus: 401, wantErr: "missing X-Hub-Signature-256"},
		{name: "other secret", auth: secretOnly, body: body, header: gitHubHeaders("deployment_status", "another secret", body), wantStatus: 401, wantErr: "does not match"},
		{name: "body changed", auth: secretOnly, body: append([]byte(" "), body...), header: signed, wantStatus: 401, wantErr: "does not match"},
		{name: "sha1 prefix", auth: secretOnly, body: body, header: with(signed, "X-Hub-Signature-256", strings.Replace(signed["X-Hub-Signature-256"], "sha256=", "sha1=", 1)), wantStatus: 401, wantErr: "sha256="},
		{name: "not hex", auth: secretOnly, body: body, header: with(signed, "X-Hub-Signature-256", "sha256="+strings.Repeat("z", 64)), wantStatus: 401, wantErr: "hex"},
		{name: "short", auth: secretOnly, body: body, header: with(signed, "X-Hub-Signature-256", signed["X-Hub-Signature-256"][:40]), wantStatus: 401, wantErr: "hex"},
		{name: "deploy token does not replace the signature", auth: ingest.AuthConfig{GitHubSecret: gitHubSecret, Deploy: ingest.Credentials{BearerToken: "deploy-token"}}, body: body,
			header: with(with(signed, "X-Hub-Signature-256", ""), "Authorization", "Bearer deploy-token"), wantStatus: 401, wantErr: "X-Hub-Signature-256"},
		// The signature comes before everything it protects.
		{name: "unsigned bad JSON", auth: secretOnly, body: []byte("{"), header: with(signed, "X-Hub-Signature-256", gitHubSign("wrong", []byte("{"))), wantStatus: 401, wantErr: "does not match"},
		{name: "unsigned wrong media type", auth: secretOnly, body: body, header: with(with(signed, "X-Hub-Signature-256", ""), "Content-Type", "text/plain"), wantStatus: 401, wantErr: "X-Hub-Signature-256"},
		{name: "unsigned invalid UTF-8", auth: secretOnly, body: []byte("{\"a\":\"\xff\"}"), header: with(signed, "X-Hub-Signature-256", gitHubSign("wrong", []byte("{\"a\":\"\xff\"}"))), wantStatus: 401, wantErr: "does not match"},
		{name: "signed wrong media type", auth: secretOnly, body: body, header: with(signed, "Content-Type", "text/plain"), wantStatus: 415, wantErr: "application/json"},
		{name: "signed but too large", auth: secretOnly, body: body, header: signed, maxBody: 1024, wantStatus: 413, wantErr: "exceeds the limit"},
		// Without a GitHub secret: the deploy route's credentials.
		{name: "open", auth: ingest.AuthConfig{}, body: body, header: gitHubHeaders("deployment_status", "", body), wantStatus: 200},
		{name: "open ignores a signature", auth: ingest.AuthConfig{}, body: body, header: gitHubHeaders("deployment_status", "whatever", body), wantStatus: 200},
		{name: "deploy token", auth: deployToken, body: body, header: with(gitHubHeaders("deployment_status", "", body), "Authorization", "Bearer deploy-token"), wantStatus: 200},
		{name: "deploy token missing", auth: deployToken, body: body, header: gitHubHeaders("deployment_status", "", body), wantStatus: 401, wantErr: "credentials"},
		{name: "basic auth from the hook URL", auth: deployBasic, body: body, header: with(gitHubHeaders("deployment_status", "", body), "Authorization", basic("github", "pw")), wantStatus: 200},
		{name: "a GitHub signature is no deploy credential", auth: deployToken, body: body, header: gitHubHeaders("deployment_status", gitHubSecret, body), wantStatus: 401, wantErr: "credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{Auth: tc.auth, MaxBodyBytes: tc.maxBody})
			r := post(t, srv.URL+gitHubPath, tc.body, tc.header)
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
}

// TestGitHubForm checks a hook whose content type is
// application/x-www-form-urlencoded (the default of a repository
// webhook): the signature covers the form, the JSON is its payload field.
func TestGitHubForm(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{Auth: ingest.AuthConfig{GitHubSecret: gitHubSecret}})
	form := []byte(url.Values{"payload": {string(gitHubFixture(t, "deployment_status.json"))}}.Encode())
	header := gitHubHeaders("deployment_status", gitHubSecret, form)
	header["Content-Type"] = "application/x-www-form-urlencoded"
	r := post(t, srv.URL+gitHubPath, form, header)
	if r.status != 200 || len(pub.published()) != 1 || pub.published()[0].Service != "checkout" {
		t.Fatalf("status %d (%s), published %+v: want the checkout deploy", r.status, r.raw, pub.published())
	}
	noPayload := []byte("zen=ok")
	header = gitHubHeaders("deployment_status", gitHubSecret, noPayload)
	header["Content-Type"] = "application/x-www-form-urlencoded"
	if r := post(t, srv.URL+gitHubPath, noPayload, header); r.status != 400 || !strings.Contains(r.err.Error, `"payload"`) {
		t.Errorf("form without payload: status %d (%s), want 400 naming the field", r.status, r.raw)
	}
	// Form encoding is for the GitHub route only.
	if r := post(t, srv.URL+deployPath, []byte("service=checkout"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); r.status != 415 {
		t.Errorf("deploy route with a form: status %d, want 415", r.status)
	}
}

func TestGitHubRefused(t *testing.T) {
	future := receivedAt.Add(2 * time.Hour).Format(time.RFC3339)
	tests := []struct {
		name    string
		event   string
		body    []byte
		wantErr string
	}{
		{"no event header", "", gitHubFixture(t, "deployment_status.json"), "X-GitHub-Event"},
		{"malformed", "deployment_status", []byte(`{"deployment_status":`), "malformed JSON"},
		{"empty", "deployment_status", nil, "empty"},
		{"not an object", "deployment_status", []byte(`[]`), "want an object"},
		{"no deployment_status", "deployment_status", []byte(`{"deployment":{"id":1}}`), `"deployment_status" is missing`},
		{"no deployment", "deployment_status", []byte(`{"deployment_status":{"id":1,"state":"success"}}`), `"deployment" is missing`},
		{"no deployment id", "deployment_status", withStatus(t, map[string]any{"deployment.id": nil}), `"deployment.id" is missing`},
		{"id a string", "deployment_status", withStatus(t, map[string]any{"deployment.id": "1874401236"}), `field "deployment.id": got JSON string, want integer`},
		{"no state", "deployment_status", withStatus(t, map[string]any{"state": ""}), `"deployment_status.state" is missing`},
		{"unknown state", "deployment_status", withStatus(t, map[string]any{"state": "exploded"}), `"exploded" is not one of pending, queued`},
		{"no service", "deployment_status", []byte(`{"deployment_status":{"state":"success"},"deployment":{"id":1},"repository":{"name":" "}}`), `"repository.name" is missing`},
		{"bad time", "deployment_status", withStatus(t, map[string]any{"updated_at": "yesterday"}), `field "deployment_status.updated_at": "yesterday" is not an RFC 3339 time`},
		{"future time", "deployment_status", withStatus(t, map[string]any{"updated_at": future}), `field "deployment_status.updated_at": ` + future + ` is more than 1h0m0s after Hindsight's clock`},
		{"ancient created_at", "deployment_status", withStatus(t, map[string]any{"updated_at": "", "created_at": "1970-01-01T00:00:00Z"}), `field "deployment_status.created_at": 1970-01-01T00:00:00Z is before 2000-01-01`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, pub := newServer(t, ingest.Options{})
			r := post(t, srv.URL+gitHubPath, tc.body, gitHubHeaders(tc.event, "", tc.body))
			if r.status != 400 {
				t.Fatalf("status %d (%s), want 400", r.status, r.raw)
			}
			if !strings.Contains(r.err.Error, tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", r.err.Error, tc.wantErr)
			}
			if n := pub.callCount(); n != 0 {
				t.Errorf("Publish called %d times, want 0", n)
			}
		})
	}
}

// TestGitHubMetrics checks that the route counts under source "github",
// with the reasons every route uses.
func TestGitHubMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, h := newMeteredServer(t, reg, ingest.Options{Auth: ingest.AuthConfig{GitHubSecret: gitHubSecret}})
	received, rejected, _, _ := h.Metrics()
	body := gitHubFixture(t, "deployment_status.json")
	post(t, srv.URL+gitHubPath, body, gitHubHeaders("deployment_status", gitHubSecret, body))
	post(t, srv.URL+gitHubPath, body, gitHubHeaders("deployment_status", "wrong", body))
	post(t, srv.URL+gitHubPath, []byte("{"), gitHubHeaders("deployment_status", gitHubSecret, []byte("{")))
	post(t, srv.URL+gitHubPath, body, gitHubHeaders("ping", gitHubSecret, body))
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"received github", received.WithLabelValues("github"), 1},
		{"received deploy", received.WithLabelValues("deploy"), 0},
		{"rejected unauthorized", rejected.WithLabelValues("github", "unauthorized"), 1},
		{"rejected bad_json", rejected.WithLabelValues("github", "bad_json"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
