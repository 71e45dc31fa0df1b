package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
)

func TestDeployAndPostmortemCommands(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yml")
	os.WriteFile(cfg, []byte("auth:\n  deploy: {bearer_token: ci-token}\n"), 0o600)
	a, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ConfigFile: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	server := "http://" + a.Addr()
	when := time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Second)

	var out, errb bytes.Buffer
	args := []string{"deploy", "--server", server, "--service", "checkout", "--version", "v2.3.1", "--environment", "prod", "--time", when.Format(time.RFC3339)}
	if code := run(args, &out, &errb); code == 0 || !strings.Contains(errb.String(), "401") {
		t.Fatalf("deploy without the token: exit %d, stderr %q; want a 401 failure", code, errb.String())
	}
	t.Setenv("HINDSIGHT_TOKEN", "ci-token")
	out.Reset()
	errb.Reset()
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("deploy: exit %d, stderr %s", code, errb.String())
	}
	var res struct{ Accepted int }
	if json.Unmarshal(out.Bytes(), &res); res.Accepted != 1 {
		t.Fatalf("deploy answered %s, want 1 accepted", out.String())
	}

	alert := `{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[{"status":"firing","labels":{"alertname":"HighLatency","service":"checkout","severity":"critical"},"annotations":{"summary":"slow"},"startsAt":"` +
		when.Add(10*time.Minute).Format(time.RFC3339) + `","endsAt":"0001-01-01T00:00:00Z","fingerprint":"abc"}]}`
	r, err := http.Post(server+"/hooks/alertmanager", "application/json", strings.NewReader(alert))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("alert: %v %v", err, r)
	}
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for id == "" && time.Now().Before(deadline) {
		incs, _, _ := a.Incidents().List(context.Background(), boltstore.ListOptions{})
		if len(incs) == 1 && len(incs[0].SuspectedChanges) == 1 {
			id = incs[0].ID
		}
		time.Sleep(20 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("no incident with the deploy as suspected change")
	}
	out.Reset()
	if code := run([]string{"postmortem", id, "--server", server}, &out, &errb); code != 0 {
		t.Fatalf("postmortem: exit %d, %s", code, errb.String())
	}
	if md := out.String(); !strings.Contains(md, "## Timeline") || !strings.Contains(md, "v2.3.1") {
		t.Fatalf("postmortem printed:\n%s", md)
	}
	errb.Reset()
	if code := run([]string{"postmortem", "--server", server, "inc-nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "404") {
		t.Fatalf("unknown incident: exit %d, %q", code, errb.String())
	}

	// --label says where a deploy went, for rules' shared_labels.
	at := when.Add(-5 * time.Minute)
	if code := run([]string{"deploy", "--server", server, "--service", "mesh", "--label", "cluster=eu1", "--label", "region=eu",
		"--time", at.Format(time.RFC3339)}, &out, &errb); code != 0 {
		t.Fatalf("deploy --label: exit %d, %s", code, errb.String())
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		ds, _ := a.Store().Deploys(at, at)
		if len(ds) == 1 {
			if ds[0].Labels["cluster"] != "eu1" || ds[0].Labels["region"] != "eu" {
				t.Fatalf("deploy labels = %v, want cluster=eu1 and region=eu", ds[0].Labels)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the labelled deploy was not stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("HINDSIGHT_LISTEN", "127.0.0.1:1234")
	fs := newFlags("x", &bytes.Buffer{})
	listen := fs.String("listen", "127.0.0.1:9097", "")
	dir := fs.String("data-dir", "d", "")
	if err := parse(fs, []string{"--data-dir", "cli"}); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:1234" || *dir != "cli" {
		t.Fatalf("listen=%q data-dir=%q; want the env value and the command line's", *listen, *dir)
	}
	t.Setenv("HINDSIGHT_INSECURE", "maybe")
	fs = newFlags("x", &bytes.Buffer{})
	fs.Bool("insecure", false, "")
	if err := parse(fs, nil); err == nil || !strings.Contains(err.Error(), "HINDSIGHT_INSECURE") || !strings.Contains(err.Error(), "true or false") {
		t.Fatalf("bad env value: err = %v, want it named", err)
	}
}
