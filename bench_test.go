package hindsight_test

import (
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// BenchmarkAlertEventID is the ID ingest derives for every alert:
// SHA-256 over the fingerprint, startsAt (RFC 3339) and status.
func BenchmarkAlertEventID(b *testing.B) {
	start := time.Date(2026, 11, 22, 4, 8, 14, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if id := hindsight.AlertEventID("f78816deac5e68e9", start, "firing"); len(id) != 34 {
			b.Fatal(id)
		}
	}
}

// BenchmarkDeployEventID covers both derivations: from the pipeline's
// deploy ID, and from service, version, status and time when there is none.
func BenchmarkDeployEventID(b *testing.B) {
	at := time.Date(2026, 11, 22, 5, 2, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		d    hindsight.DeployDetails
	}{
		{"with-id", hindsight.DeployDetails{ID: "run-812", Environment: "prod", Version: "v2.3.1", Status: "succeeded"}},
		{"without-id", hindsight.DeployDetails{Environment: "prod", Version: "v2.3.1", Status: "succeeded"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if id := hindsight.DeployEventID(tc.d, "checkout", at); len(id) != 34 {
					b.Fatal(id)
				}
			}
		})
	}
}
