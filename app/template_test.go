package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-sre/hindsight/app"
)

// --template replaces the built-in postmortem template; one that does
// not render is refused at startup, naming the file and the problem.
func TestCustomTemplate(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "pm.tmpl")
	if err := os.WriteFile(tmpl, []byte("# Our postmortem: {{.Title}}\n\nStarted {{time .Start}}.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := boot(t, t.TempDir(), tokenConfig, func(o *app.Options) { o.TemplateFile = tmpl })
	postAlerts(t, a, fixture(t, "01-first-firing.json"))
	var id string
	eventually(t, "an incident", func() bool {
		incs := incidents(t, a)
		if len(incs) == 1 {
			id = incs[0].ID
		}
		return id != ""
	})
	md := string(call(t, "GET", "http://"+a.Addr()+"/api/v1/incidents/"+id+"/postmortem.md", "", nil).body)
	if !strings.HasPrefix(md, "# Our postmortem: ") || !strings.Contains(md, "Started 2026-11-22 04:08 UTC.") {
		t.Fatalf("postmortem with the custom template:\n%s", md)
	}

	bad := filepath.Join(dir, "bad.tmpl")
	if err := os.WriteFile(bad, []byte("{{.Titel}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), TemplateFile: bad})
	if err == nil || !strings.Contains(err.Error(), "--template "+bad) || !strings.Contains(err.Error(), "Titel") {
		t.Fatalf("start with a broken template: %v; want an error naming the file and the field", err)
	}
}
