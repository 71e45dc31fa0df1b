package ingest

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
)

// metrics are the ingest counters. Every label value comes from a closed
// set (sources, reason constants), never from the request.
type metrics struct {
	received        *prometheus.CounterVec   // source
	rejected        *prometheus.CounterVec   // source, reason
	deduplicated    prometheus.Counter       // stage="ingest"
	publishDuration *prometheus.HistogramVec // source
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	dedup := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hindsight_events_deduplicated_total",
		Help: "Events dropped as duplicates of events already recorded, by pipeline stage.",
	}, []string{"stage"})
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hindsight_events_received_total",
			Help: "Events acknowledged by the event stream, duplicates included, by source.",
		}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hindsight_events_rejected_total",
			Help: "Requests (or single alerts of a notification) refused, by source and reason.",
		}, []string{"source", "reason"}),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hindsight_publish_duration_seconds",
			Help: "Time to publish one request's events and get every acknowledgement, by source.",
			// JetStream acknowledges after an fsync: milliseconds when
			// healthy, up to the publish timeout when not.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	if reg != nil {
		var err error
		if m.received, err = register(reg, m.received); err != nil {
			return nil, err
		}
		if m.rejected, err = register(reg, m.rejected); err != nil {
			return nil, err
		}
		if m.publishDuration, err = register(reg, m.publishDuration); err != nil {
			return nil, err
		}
		if dedup, err = register(reg, dedup); err != nil {
			return nil, err
		}
	}
	m.deduplicated = dedup.WithLabelValues("ingest")
	// Start every source at zero, so that rate() and absent() work before
	// the first event.
	for _, s := range []hindsight.Source{hindsight.SourceAlertmanager, hindsight.SourceDeploy, sourceGitHub, hindsight.SourceNote, hindsight.SourceHuman} {
		m.received.WithLabelValues(string(s))
	}
	return m, nil
}

// register registers c, or returns the identical collector already
// registered: hindsight_events_deduplicated_total is shared with other
// stages, and a second Handler on the same registry should not fail.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}
