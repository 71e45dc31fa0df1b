package correlate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
)

type metrics struct {
	applied       *prometheus.CounterVec
	duplicates    prometheus.Counter
	timeToDetect  *prometheus.HistogramVec
	timeToResolve *prometheus.HistogramVec
	visibility    prometheus.Histogram
}

// durationBuckets span a blip to a long outage, in seconds.
var durationBuckets = []float64{30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hindsight_correlate_events_applied_total",
			Help: "Events folded into incidents, by source.",
		}, []string{"source"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hindsight_correlate_events_deduplicated_total",
			Help: "Events the correlator already had (redeliveries and repeats beyond JetStream's duplicate window).",
		}),
		timeToDetect: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hindsight_time_to_detect_seconds",
			Help:    "First notification received minus incident start, observed when an incident resolves (unknown ones are not observed).",
			Buckets: durationBuckets,
		}, []string{"severity"}),
		timeToResolve: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hindsight_time_to_resolve_seconds",
			Help:    "Incident resolved minus incident start, observed when an incident resolves.",
			Buckets: durationBuckets,
		}, []string{"severity"}),
		visibility: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hindsight_correlate_visibility_seconds",
			Help:    "From an event's receipt at ingest to the commit that put it on its incident's timeline, per new event: how stale the incidents are. Events replayed from an old stream (a rebuild, a new replica) count in the top bucket.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.applied, m.duplicates, m.timeToDetect, m.timeToResolve, m.visibility} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observeResolved(inc *hindsight.Incident) {
	sev := SeverityClass(inc.Severity)
	if inc.TimeToResolve != nil {
		m.timeToResolve.WithLabelValues(sev).Observe(float64(*inc.TimeToResolve))
	}
	if inc.TimeToDetect != nil {
		m.timeToDetect.WithLabelValues(sev).Observe(float64(*inc.TimeToDetect))
	}
}
