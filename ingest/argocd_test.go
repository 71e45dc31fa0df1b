package ingest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/ingest"
)

// argoFixture reads a file of testdata/argocd.
func argoFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "argocd", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArgoCDNotifications posts what the Argo CD templates of
// deploy/argocd-notifications.yaml render for a sample application, as
// Argo CD's webhook service sends it, and checks the events.
func TestArgoCDNotifications(t *testing.T) {
	srv, pub := newServer(t, ingest.Options{Auth: ingest.AuthConfig{Deploy: ingest.Credentials{BearerToken: "change-me"}}})
	// The service's headers: Content-Type and the token from the secret.
	header := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer change-me"}
	started := time.Date(2026, 11, 22, 4, 11, 48, 0, time.UTC)
	synced := hindsight.DeployDetails{
		ID: "argocd/argocd/checkout/2026-11-22T04:11:48Z", Environment: "prod", Version: "4f9e2b7",
		Actor: "alice@acme.example", Commit: "4f9e2b7c1d3a5e6f8091a2b3c4d5e6f708192a3b",
	}
	running, deployed := synced, synced
	running.Status, running.URL, running.Description = "started", "https://argocd.example.com/applications/checkout?operation=true", "sync started"
	deployed.Status, deployed.URL, deployed.Description = "succeeded", "https://argocd.example.com/applications/checkout", "successfully synced (all tasks run)"
	failed := hindsight.DeployDetails{
		ID: "argocd/argocd/checkout/2026-11-22T04:20:05Z", Environment: "prod", Version: "a71c03e", Status: "failed",
		Actor: "argocd (auto-sync)", Commit: "a71c03e94b2d58f6c0e1d2a3b4c5d6e7f8091a2b",
		URL:         "https://argocd.example.com/applications/checkout?operation=true",
		Description: `one or more objects failed to apply, reason: Deployment.apps "checkout" is invalid: spec.template.spec.containers[0].image: Required value (retried 5 times).`,
	}
	tests := []struct {
		file    string
		details hindsight.DeployDetails
		kind    hindsight.Kind
		at      time.Time
		summary string
	}{
		{"app-sync-running.json", running, hindsight.KindDeployStarted, started,
			"Deploy of checkout 4f9e2b7 to prod started (by alice@acme.example)"},
		{"app-deployed.json", deployed, hindsight.KindDeploySucceeded, time.Date(2026, 11, 22, 4, 12, 31, 0, time.UTC),
			"Deploy of checkout 4f9e2b7 to prod succeeded (by alice@acme.example)"},
		{"app-sync-failed.json", failed, hindsight.KindDeployFailed, time.Date(2026, 11, 22, 4, 21, 37, 0, time.UTC),
			"Deploy of checkout a71c03e to prod failed (by argocd (auto-sync))"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r := post(t, srv.URL+deployPath, argoFixture(t, tc.file), header)
			if r.status != 200 {
				t.Fatalf("status %d (%s), want 200", r.status, r.raw)
			}
			d := tc.details
			want := hindsight.Event{
				ID:         hindsight.DeployEventID(d, "checkout", time.Time{}),
				Kind:       tc.kind,
				Source:     hindsight.SourceDeploy,
				Time:       tc.at,
				ReceivedAt: receivedAt,
				Service:    "checkout",
				Labels:     map[string]string{"service": "checkout", "environment": "prod"},
				Summary:    tc.summary,
				Deploy:     &d,
			}
			got := pub.published()
			if len(got) == 0 || !reflect.DeepEqual(got[len(got)-1], want) {
				t.Fatalf("published\n%+v\nwant last\n%+v", got, want)
			}
			// Argo CD retries a request that failed with the same body.
			if again := post(t, srv.URL+deployPath, argoFixture(t, tc.file), header); again.ok.Duplicates != 1 {
				t.Errorf("retry answer %+v, want a duplicate", again.ok)
			}
		})
	}
	if got := pub.published(); len(got) != 3 || got[0].Deploy.ID != got[1].Deploy.ID {
		t.Errorf("published %d events, want 3, the first two one deploy", len(got))
	}
}

// TestArgoCDTemplates renders the templates of
// deploy/argocd-notifications.yaml for the sample applications, as Argo
// CD's notifications controller does (text/template with Sprig), and
// checks that they give the bodies of testdata/argocd.
func TestArgoCDTemplates(t *testing.T) {
	cm, secret := argoConfig(t)
	var service struct {
		URL     string `yaml:"url"`
		Headers []struct{ Name, Value string }
	}
	if err := yaml.Unmarshal([]byte(cm["service.webhook.hindsight"]), &service); err != nil {
		t.Fatalf("service.webhook.hindsight: %v", err)
	}
	if !strings.HasSuffix(service.URL, deployPath) {
		t.Errorf("webhook URL %q, want one ending in %s", service.URL, deployPath)
	}
	var auth string
	for _, h := range service.Headers {
		if h.Name == "Authorization" {
			auth = h.Value
		}
	}
	if key, ok := strings.CutPrefix(auth, "Bearer $"); !ok || secret[key] == "" {
		t.Errorf("Authorization header %q, want Bearer $<key of the secret> (secret keys %v)", auth, secret)
	}
	var context map[string]string
	if err := yaml.Unmarshal([]byte(cm["context"]), &context); err != nil {
		t.Fatalf("context: %v", err)
	}
	for trigger, tmpl := range map[string]string{"on-deployed": "app-deployed", "on-sync-failed": "app-sync-failed", "on-sync-running": "app-sync-running"} {
		var conditions []struct {
			Send []string `yaml:"send"`
		}
		if err := yaml.Unmarshal([]byte(cm["trigger."+trigger]), &conditions); err != nil || len(conditions) != 1 || !reflect.DeepEqual(conditions[0].Send, []string{tmpl}) {
			t.Errorf("trigger.%s: %v %+v, want one condition sending %s", trigger, err, conditions, tmpl)
		}
	}
	for _, tc := range []struct{ template, app, want string }{
		{"app-deployed", "application-synced.json", "app-deployed.json"},
		{"app-sync-running", "application-synced.json", "app-sync-running.json"},
		{"app-sync-failed", "application-sync-failed.json", "app-sync-failed.json"},
	} {
		t.Run(tc.template, func(t *testing.T) {
			var tmpl struct {
				Webhook map[string]struct {
					Method, Path, Body string
				}
			}
			if err := yaml.Unmarshal([]byte(cm["template."+tc.template]), &tmpl); err != nil {
				t.Fatal(err)
			}
			wh, ok := tmpl.Webhook["hindsight"]
			if !ok || wh.Method != "POST" || wh.Path != "" {
				t.Fatalf("webhook %+v, want POST to the service URL", tmpl.Webhook)
			}
			var app map[string]any
			if err := json.Unmarshal(argoFixture(t, tc.app), &app); err != nil {
				t.Fatal(err)
			}
			body := renderArgo(t, wh.Body, map[string]any{"app": app, "context": context})
			var got, want map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("rendered body is not JSON: %v\n%s", err, body)
			}
			if err := json.Unmarshal(argoFixture(t, tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rendered\n%s\nwant testdata/argocd/%s", body, tc.want)
			}
		})
	}
}

// argoConfig reads the ConfigMap's and the Secret's data from
// deploy/argocd-notifications.yaml.
func argoConfig(t *testing.T) (cm, secret map[string]string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "deploy", "argocd-notifications.yaml"))
	if err != nil {
		t.Skipf("no deploy/ (not in a module download): %v", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind       string            `yaml:"kind"`
			Data       map[string]string `yaml:"data"`
			StringData map[string]string `yaml:"stringData"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("deploy/argocd-notifications.yaml: %v", err)
		}
		switch doc.Kind {
		case "ConfigMap":
			cm = doc.Data
		case "Secret":
			secret = doc.StringData
		}
	}
	if cm == nil || secret == nil {
		t.Fatal("deploy/argocd-notifications.yaml: want a ConfigMap and a Secret")
	}
	return cm, secret
}

// renderArgo executes a template body with the functions the templates
// use, defined as Sprig defines them.
func renderArgo(t *testing.T, text string, vars map[string]any) []byte {
	t.Helper()
	funcs := template.FuncMap{
		"toJson": func(v any) string {
			b, _ := json.Marshal(v)
			return string(b)
		},
		"trunc": func(c int, s string) string {
			if c >= 0 && len(s) > c {
				return s[:c]
			}
			return s
		},
	}
	tmpl, err := template.New("body").Funcs(funcs).Parse(text)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, vars); err != nil {
		t.Fatalf("execute: %v", err)
	}
	return b.Bytes()
}
