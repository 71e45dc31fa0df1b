package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedians(t *testing.T) {
	rs := []result{
		{Label: "bare", Round: 1, AlertsPerSecond: 100, CPUMicrosPerAlert: 10, P50Ms: 1},
		{Label: "alertmanager", Round: 1, AlertsPerSecond: 40},
		{Label: "hindsight", Round: 1, AlertsPerSecond: 20},
		{Label: "bare", Round: 2, AlertsPerSecond: 50, CPUMicrosPerAlert: 20, P50Ms: 3},
		{Label: "alertmanager", Round: 2, AlertsPerSecond: 25},
		{Label: "hindsight", Round: 2, AlertsPerSecond: 5},
		{Label: "bare", Round: 3, AlertsPerSecond: 80, CPUMicrosPerAlert: 30, P50Ms: 2},
		{Label: "hindsight", Round: 3, AlertsPerSecond: 40, Errors: 2},
	}
	rows := medians(rs)
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"bare alerts/s", rows[0].AlertsPerSecond, 80},
		{"bare CPU", rows[0].CPUMicrosPerAlert, 20},
		{"bare p50", rows[0].P50Ms, 2},
		{"alertmanager × bare (rounds 1, 2)", rows[1].RatioToBare, 0.45},
		{"hindsight alerts/s", rows[2].AlertsPerSecond, 20},
		// per round: 0.2, 0.1, 0.5
		{"hindsight × bare", rows[2].RatioToBare, 0.2},
		// per round: 0.5, 0.2; round 3 has no Alertmanager
		{"hindsight × alertmanager", rows[2].RatioToAM, 0.35},
		{"hindsight errors", float64(rows[2].Errors), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestRunWritesReport(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, r := range []result{{Label: "bare", Round: 1, AlertsPerSecond: 10}, {Label: "hindsight", Round: 1, AlertsPerSecond: 5}} {
		b, _ := json.Marshal(r)
		files = append(files, filepath.Join(dir, string(rune('a'+i))+".json"))
		if err := os.WriteFile(files[i], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "report.json")
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"--out", out, "--meta", "nproc=2"}, files...), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "hindsight") || !strings.Contains(stdout.String(), "0.500") {
		t.Errorf("table:\n%s", stdout.String())
	}
	var rep Report
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &rep); err != nil || rep.Meta["nproc"] != "2" || len(rep.Rows) != 2 || len(rep.Results) != 2 {
		t.Errorf("report %s: %v", b, err)
	}
}
