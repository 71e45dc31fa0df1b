package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics exposes h's collectors to the external tests, for
// testutil.ToFloat64.
func (h *Handler) Metrics() (received, rejected *prometheus.CounterVec, deduplicated prometheus.Counter, publishDuration *prometheus.HistogramVec) {
	m := h.metrics
	return m.received, m.rejected, m.deduplicated, m.publishDuration
}
