package app_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
)

// FuzzParseConfig feeds the config parser arbitrary documents: it must
// never panic, every refusal names the file, and a document it accepts
// gives correlation settings that place and fold an alert.
func FuzzParseConfig(f *testing.F) {
	for _, path := range []string{"../deploy/hindsight.yml", "../cmd/hindsight/testdata/rules.yml"} {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("correlation:\n  rules:\n    - name: a\n      match: ['severity=~\"critical|page\"']\n      key: [cluster, service]\n      open_after: {alerts: 2, for: 5m}\n"))
	f.Add([]byte("correlation: {key_labels: [], reopen_window: -1m}\n"))
	f.Add([]byte("correlation:\n  rules: [{name: x, match: ['a=~\"(\"']}]\n"))
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	alert := hindsight.Event{ID: "a1", Kind: hindsight.KindAlertFiring, Source: hindsight.SourceAlertmanager, Time: at, ReceivedAt: at,
		Labels: map[string]string{"alertname": "X", "service": "checkout", "severity": "critical", "cluster": "eu1"},
		Alert:  &hindsight.AlertDetails{Name: "X", Fingerprint: "f1", StartsAt: at, GroupKey: "g"}}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := app.ParseConfig(doc, "fuzz.yml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		cc, err := c.CorrelateConfig()
		if err != nil {
			t.Fatalf("accepted, but its correlation settings fail: %v", err)
		}
		cc.FoldStream([]hindsight.Event{alert})
	})
}
