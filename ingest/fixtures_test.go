package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFixturesMatchShared checks that testdata's copy of the Alertmanager
// captures is still the one in the repository's shared fixtures, when
// those are present (they are not in a module download).
func TestFixturesMatchShared(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "fixtures", "alertmanager-0.25")
	entries, err := os.ReadDir(shared)
	if err != nil {
		t.Skipf("no shared fixtures: %v", err)
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(shared, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join("testdata", "alertmanager-0.25", e.Name()))
			if err != nil {
				t.Fatalf("missing from testdata: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("testdata copy differs from %s: copy it again", filepath.Join(shared, e.Name()))
			}
		})
	}
}
