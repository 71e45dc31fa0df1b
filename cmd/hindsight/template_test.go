package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-sre/hindsight/draft"
)

func TestTemplateCommand(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"template"}, &out, &errs); code != 0 || out.String() != draft.Default() {
		t.Fatalf("template: exit %d, printed %d bytes; want the built-in template", code, out.Len())
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tmpl")
	bad := filepath.Join(dir, "bad.tmpl")
	os.WriteFile(good, []byte("# {{.Title}}\n{{range .Timeline}}- {{.When}} {{.Text}}\n{{end}}"), 0o600)
	os.WriteFile(bad, []byte("# {{.Titel}}\n"), 0o600)
	out.Reset()
	if code := run([]string{"template", "check", good}, &out, &errs); code != 0 || !strings.Contains(out.String(), "renders the sample") {
		t.Errorf("check good: exit %d, %s %s", code, out.String(), errs.String())
	}
	errs.Reset()
	if code := run([]string{"template", "check", bad}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "Titel") {
		t.Errorf("check bad: exit %d, stderr %q; want 1 naming the misspelt field", code, errs.String())
	}
}
