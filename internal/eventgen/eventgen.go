// Package eventgen makes realistic synthetic event streams for benchmarks
// and volume tests (rebuild speed, state-file checks).
package eventgen

import (
	"fmt"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// Events returns n events as Alertmanager and a CI would send them,
// in time order: alert occurrences of 1 to 3 alerts on one of services
// services, each resolved some minutes later, and a deploy now and then.
func Events(n, services int) []hindsight.Event {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []hindsight.Event
	for i := 0; len(out) < n; i++ {
		svc := fmt.Sprintf("svc-%03d", i%services)
		start := base.Add(time.Duration(i) * 7 * time.Minute)
		if i%5 == 0 {
			d := hindsight.DeployDetails{ID: fmt.Sprintf("ci-%d", i), Environment: "prod", Version: fmt.Sprintf("v1.%d.0", i), Status: "succeeded",
				Actor: "ci-bot", Commit: fmt.Sprintf("%040x", i), URL: "https://ci.example.com/runs/" + fmt.Sprint(i)}
			at := start.Add(-12 * time.Minute)
			out = append(out, hindsight.Event{ID: hindsight.DeployEventID(d, svc, at), Kind: hindsight.KindDeploySucceeded,
				Source: hindsight.SourceDeploy, Time: at, ReceivedAt: at.Add(time.Second), Service: svc,
				Summary: fmt.Sprintf("Deploy of %s %s to prod succeeded", svc, d.Version), Deploy: &d})
		}
		for a := range 1 + i%3 {
			fp := fmt.Sprintf("%016x", i*4+a)
			name := []string{"HighLatency", "ErrorRate", "PodCrashLooping"}[a]
			labels := map[string]string{"alertname": name, "service": svc, "severity": []string{"critical", "warning"}[i%2],
				"instance": fmt.Sprintf("%s-%d:8080", svc, a), "job": svc, "namespace": "shop"}
			det := hindsight.AlertDetails{Name: name, Fingerprint: fp, StartsAt: start.Add(time.Duration(a) * time.Minute),
				Annotations: map[string]string{"summary": name + " on " + svc, "description": "value is 3.4 (threshold 2)",
					"runbook_url": "https://runbooks.example.com/" + svc},
				GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=histogram_quantile%280.99%2C+rate%28http_request_duration_seconds_bucket%5B5m%5D%29%29+%3E+2",
				GroupKey:     `{}:{service="` + svc + `"}`, Receiver: "hindsight", ExternalURL: "http://alertmanager.example:9093"}
			firing := hindsight.Event{ID: hindsight.AlertEventID(fp, det.StartsAt, "firing"), Kind: hindsight.KindAlertFiring,
				Source: hindsight.SourceAlertmanager, Time: det.StartsAt, ReceivedAt: det.StartsAt.Add(30 * time.Second),
				Service: svc, Labels: labels, Summary: name + " (" + svc + ")", Alert: &det}
			rd := det
			rd.EndsAt = det.StartsAt.Add(time.Duration(5+i%20) * time.Minute)
			resolved := firing
			resolved.ID, resolved.Kind, resolved.Time, resolved.ReceivedAt, resolved.Alert = hindsight.AlertEventID(fp, det.StartsAt, "resolved"),
				hindsight.KindAlertResolved, rd.EndsAt, rd.EndsAt.Add(30*time.Second), &rd
			out = append(out, firing, resolved)
		}
	}
	return out[:n]
}
