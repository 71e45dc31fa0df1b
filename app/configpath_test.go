package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-sre/hindsight/app"
)

// While serve runs, <data-dir>/serve.config holds the absolute path of
// its --config (replay's default for the current settings); it goes on
// Close.
func TestServeLeavesItsConfigPath(t *testing.T) {
	dir := t.TempDir()
	a := boot(t, dir, "correlation: {reopen_window: 15m}\n")
	b, err := os.ReadFile(filepath.Join(dir, app.ConfigPathFile))
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSpace(string(b))
	if !filepath.IsAbs(path) {
		t.Fatalf("%s holds %q, want an absolute path", app.ConfigPathFile, path)
	}
	if c, err := app.LoadConfig(path); err != nil || c.Correlation.ReopenWindow.Minutes() != 15 {
		t.Fatalf("the path does not lead to serve's config: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, app.ConfigPathFile)); !os.IsNotExist(err) {
		t.Fatalf("%s still there after Close: %v", app.ConfigPathFile, err)
	}
}
