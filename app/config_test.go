package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	os.WriteFile(secret, []byte("from-file\n"), 0o600)
	for _, tc := range []struct {
		name, yaml string
		err        string // substring; "" = ok
	}{
		{"empty", "", ""},
		{"the example in deploy/", "@../deploy/hindsight.yml", "secret"}, // its secret files live in the container
		{"durations and labels", "correlation:\n  key_labels: [cluster, service]\n  reopen_window: 5m\n", ""},
		{"unknown field names its line", "correlation:\n  reopen_windw: 5m\n", "line 2"},
		{"bad duration", "correlation:\n  reopen_window: soon\n", "line 2"},
		{"negative window", "correlation:\n  reopen_window: -5m\n", "negative"},
		{"token file", "auth:\n  deploy: {bearer_token_file: " + secret + "}\n", ""},
		{"missing token file", "auth:\n  deploy: {bearer_token_file: /nonexistent}\n", "/nonexistent"},
		{"both token and file", "auth:\n  deploy: {bearer_token: a, bearer_token_file: " + secret + "}\n", "not both"},
		{"basic auth without password", "auth:\n  api: {basic_auth: {username: u}}\n", "password"},
		{"empty bearer token", "auth:\n  deploy: {bearer_token: \"\"}\n", "bearer_token is empty"},
		{"typo names the key, not Go types", "correlation:\n  key_lables: [x]\n", "key_lables not found (no such setting"},
		{"bad sync interval", "nats:\n  sync_interval: sometimes\n", "sync_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := strings.TrimPrefix(tc.yaml, "@")
			if !strings.HasPrefix(tc.yaml, "@") {
				path = filepath.Join(t.TempDir(), "c.yml")
				os.WriteFile(path, []byte(tc.yaml), 0o600)
			}
			c, err := LoadConfig(path)
			if err == nil {
				_, err = c.auth()
			}
			if tc.err == "" && err != nil {
				t.Fatalf("LoadConfig = %v, want ok", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("LoadConfig = %v, want an error mentioning %q", err, tc.err)
			}
		})
	}
	c, _ := LoadConfig(writeTemp(t, "correlation:\n  reopen_window: 5m\n"))
	cc, _ := c.CorrelateConfig()
	if cc.ReopenWindow != 5*time.Minute || cc.ChangeLookback != time.Hour || cc.KeyLabels[0] != "service" {
		t.Fatalf("correlation = %+v, want 5m window over the defaults", cc)
	}
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "c.yml")
	os.WriteFile(p, []byte(s), 0o600)
	return p
}
