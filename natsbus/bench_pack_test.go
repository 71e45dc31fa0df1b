package natsbus

import (
	"fmt"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// BenchmarkPack10 encodes a notification of 10 alerts into its message.
func BenchmarkPack10(b *testing.B) {
	var evs []hindsight.Event
	for i := range 10 {
		evs = append(evs, hindsight.Event{ID: fmt.Sprint("a-", i), Kind: hindsight.KindAlertFiring, Source: hindsight.SourceAlertmanager,
			Time: time.Now(), ReceivedAt: time.Now(), Service: "checkout", Summary: "p99 latency above 2s on checkout",
			Labels: map[string]string{"alertname": "HighLatency", "service": "checkout", "severity": "critical", "instance": "checkout-7d9f:8080", "job": "checkout"},
			Alert:  &hindsight.AlertDetails{Name: "HighLatency", Fingerprint: "7d9f", StartsAt: time.Now(), Annotations: map[string]string{"summary": "p99 latency above 2s", "runbook_url": "https://runbooks.example/checkout"}, GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=x"}})
	}
	for b.Loop() {
		if _, err := pack(evs, maxEnvelopeBytes); err != nil {
			b.Fatal(err)
		}
	}
}
