package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/hindsight-sre/hindsight"
)

// benchPayload is an Alertmanager 0.25 notification of n firing alerts of
// one service, each with its own instance and so its own fingerprint, with
// the labels and annotations of a Kubernetes fleet.
func benchPayload(b *testing.B, n int, startsAt time.Time) []byte {
	b.Helper()
	names := []struct{ name, severity string }{
		{"HighLatency", "critical"}, {"HighErrorRate", "critical"}, {"PodCrashLooping", "warning"}, {"DiskWillFillIn4Hours", "warning"},
	}
	p := amPayload{Version: alertmanagerVersion, GroupKey: `{}:{service="checkout"}`}
	p.Receiver, p.Status, p.ExternalURL = "hindsight", "firing", "http://alertmanager.example:9093"
	p.GroupLabels = template.KV{"service": "checkout"}
	p.CommonLabels = template.KV{"cluster": "eu-1", "env": "prod", "job": "checkout", "namespace": "shop", "service": "checkout"}
	p.CommonAnnotations = template.KV{}
	for i := range n {
		k := names[i%len(names)]
		pod := fmt.Sprintf("checkout-7d9f8c6b5-%05x", i)
		labels := template.KV{
			"alertname": k.name, "cluster": "eu-1", "container": "checkout", "env": "prod", "instance": pod + ":8080",
			"job": "checkout", "namespace": "shop", "pod": pod, "service": "checkout", "severity": k.severity,
		}
		ls := model.LabelSet{}
		for k, v := range labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		p.Alerts = append(p.Alerts, template.Alert{
			Status: "firing", Labels: labels,
			Annotations: template.KV{
				"summary":     k.name + " on checkout",
				"description": "firing on " + pod + ":8080",
				"runbook_url": "https://runbooks.example.com/checkout/" + k.name,
			},
			StartsAt:     startsAt,
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=histogram_quantile%280.99%2C+sum+by+%28le%29+%28rate%28x%5B5m%5D%29%29%29+%3E+2&g0.tab=1",
			Fingerprint:  ls.Fingerprint().String(),
		})
	}
	body, err := json.Marshal(struct {
		template.Data
		Version         string `json:"version"`
		GroupKey        string `json:"groupKey"`
		TruncatedAlerts int    `json:"truncatedAlerts"`
	}{p.Data, p.Version, p.GroupKey, 0})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkParseAlertmanager is the parse of a notification into events
// (JSON decoding, checks, fingerprints, event IDs): the CPU ingest spends
// on a webhook before publishing. Sub-benchmarks are alerts per
// notification.
func BenchmarkParseAlertmanager(b *testing.B) {
	received := time.Date(2026, 11, 22, 5, 16, 2, 0, time.UTC)
	for _, n := range []int{10, 100} {
		body := benchPayload(b, n, received.Add(-2*time.Minute))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				evs, rejected, err := parseAlertmanager(body, received)
				if err != nil || len(evs) != n || len(rejected) != 0 {
					b.Fatalf("%d events, %d rejected, %v", len(evs), len(rejected), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/alert")
		})
	}
}

// discardPublisher acknowledges every event at once: what the handler
// costs without JetStream.
type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, []hindsight.Event) (int, error) { return 0, nil }

// BenchmarkHandlerAlertmanager is a whole POST /hooks/alertmanager of 10
// alerts through the Handler (body read, parse, metrics, JSON answer)
// with a publisher that stores nothing.
func BenchmarkHandlerAlertmanager(b *testing.B) {
	h, err := New(Options{Publisher: discardPublisher{}})
	if err != nil {
		b.Fatal(err)
	}
	body := benchPayload(b, 10, time.Now().Add(-2*time.Minute).UTC().Truncate(time.Second))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/hooks/alertmanager", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10), "ns/alert")
}
