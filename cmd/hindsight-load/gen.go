package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/hindsight-sre/hindsight"
)

// amAlert is one alert of an Alertmanager webhook notification, in the
// shape Alertmanager 0.25 sends (see /work/shared/fixtures): a firing
// alert's endsAt is the zero time, 0001-01-01T00:00:00Z.
type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// amNotification is Alertmanager's webhook body, payload version 4.
type amNotification struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []amAlert         `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
}

// deployBody is the body of POST /hooks/deploy.
type deployBody struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	Version     string            `json:"version"`
	Status      string            `json:"status"`
	Time        time.Time         `json:"time"`
	Actor       string            `json:"actor"`
	Commit      string            `json:"commit"`
	URL         string            `json:"url"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels"`
}

const (
	pathAlertmanager = "/hooks/alertmanager"
	pathDeploy       = "/hooks/deploy"
	// repeatWindow is how far back a repeat reaches for acknowledged
	// alerts: well inside JetStream's duplicate window (10m by default),
	// so that every repeated event must come back as a duplicate.
	repeatWindow = 5 * time.Minute
	// maxHeld bounds the notifications of one service held back for late
	// delivery, so that --out-of-order 1 still sends.
	maxHeld = 3
	// maxFiringAge bounds how long before its notification an alert
	// started: startsAt stays near now.
	maxFiringAge = 90 * time.Second
)

// alertNames are the alerts every instance of a service can raise.
var alertNames = []struct {
	name, severity, summary, description, expr string
}{
	{"HighLatency", "critical", "p99 latency above 2s on %s", "p99 latency is %.1fs (threshold 2s)",
		`histogram_quantile(0.99, sum by (le, instance) (rate(http_request_duration_seconds_bucket[5m]))) > 2`},
	{"HighErrorRate", "critical", "5xx ratio above 5%% on %s", "5xx ratio is %.1f%% (threshold 5%%)",
		`sum by (instance) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (instance) (rate(http_requests_total[5m])) > 0.05`},
	{"PodCrashLooping", "warning", "a pod of %s is restarting", "%.0f restarts in the last 15 minutes",
		`increase(kube_pod_container_status_restarts_total[15m]) > 3`},
	{"DiskWillFillIn4Hours", "warning", "disk of %s fills within 4h", "%.0f%% free, falling",
		`predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600) < 0`},
}

var serviceNames = []string{"checkout", "payments", "cart", "search", "catalog", "auth", "gateway", "orders",
	"inventory", "shipping", "recommendations", "notifications", "users", "billing", "reviews", "pricing",
	"ads", "media", "email", "frontend"}

// serviceName returns the i-th service's name: a realistic one, then the
// same names with a number.
func serviceName(i int) string {
	n := serviceNames[i%len(serviceNames)]
	if i >= len(serviceNames) {
		n = fmt.Sprintf("%s-%d", n, i/len(serviceNames)+1)
	}
	return n
}

// genOptions shape the traffic; they are the flags of the same names.
type genOptions struct {
	AlertsPerNotification int
	Services              int
	Instances             int
	FlapRate              float64
	RepeatRatio           float64
	OutOfOrder            float64
	DeployEvery           int
	Seed                  uint64
}

// seriesPerService is how many alert series (label sets) a service has.
func (o genOptions) seriesPerService() int { return o.Instances * len(alertNames) }

// sentAlert is an alert of a notification that was acknowledged: what a
// repeat sends again, and the event ID it must collapse onto.
type sentAlert struct {
	alert amAlert
	id    string
	at    time.Time
}

// ackLog gives the alerts of a service acknowledged since a time, for
// repeats.
type ackLog interface {
	recentAlerts(service string, since time.Time) []sentAlert
}

type reqKind int

const (
	kindAlerts reqKind = iota
	kindDeploy
)

// request is one webhook call and what its answer must say.
type request struct {
	kind    reqKind
	path    string
	service string
	// repeat: every alert was acknowledged before; each must come back
	// as a duplicate.
	repeat bool
	// late: held back and delivered after a later notification of the
	// same service.
	late bool
	body []byte
	// ids are the event IDs the answer must list, in order.
	ids []string
	// alerts are a fresh notification's alerts, for later repeats.
	alerts []amAlert
}

// series is one alert label set and its current occurrence.
type series struct {
	name     int // index in alertNames
	labels   map[string]string
	fp       string
	firing   bool
	startsAt time.Time
	// endedAt is the end of the previous occurrence: a flap starts after it.
	endedAt time.Time
}

type service struct {
	name    string
	cluster string
	// replicaSet is the pod-template hash in instance names; a
	// successful deploy changes it, as a Kubernetes rollout does.
	replicaSet string
	series     []*series
	deploys    int
}

// generator makes the traffic: fresh notifications whose alerts move
// through fire → resolve (→ fire again when flapping), repeats of
// acknowledged alerts, late deliveries, and deploys. It is not safe for
// concurrent use: one goroutine drives it.
type generator struct {
	o        genOptions
	rng      *rand.Rand
	now      func() time.Time
	acked    ackLog
	run      string
	services []*service
	held     map[int][]request
	out      []request
	finished bool
	// sinceDeploy counts notifications since the last deploy.
	sinceDeploy int
	// freshEvents counts the new events generated (alerts of fresh
	// notifications, deploys): what --events bounds.
	freshEvents int
}

func newGenerator(o genOptions, now func() time.Time, acked ackLog) *generator {
	g := &generator{
		o:     o,
		rng:   rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		now:   now,
		acked: acked,
		// The run ID keeps deploy IDs of two runs against one server apart.
		run:  strings.ToLower(fmt.Sprintf("%x", now().UnixMilli()))[4:],
		held: map[int][]request{},
	}
	clusters := []string{"prod-eu-west-1", "prod-us-east-1"}
	for i := range o.Services {
		s := &service{name: serviceName(i), cluster: clusters[i%len(clusters)], replicaSet: g.hex(9)}
		for range o.Instances {
			for n := range alertNames {
				s.series = append(s.series, g.newSeries(s, n))
			}
		}
		g.services = append(g.services, s)
	}
	return g
}

func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(len(digits))]
	}
	return string(b)
}

// newSeries is alert name n on a new pod of s.
func (g *generator) newSeries(s *service, n int) *series {
	const podChars = "bcdfghjklmnpqrstvwxz2456789"
	pod := make([]byte, 5)
	for i := range pod {
		pod[i] = podChars[g.rng.IntN(len(podChars))]
	}
	labels := map[string]string{
		"alertname": alertNames[n].name,
		"service":   s.name,
		"instance":  fmt.Sprintf("%s-%s-%s:8080", s.name, s.replicaSet, pod),
		"severity":  alertNames[n].severity,
		"cluster":   s.cluster,
		"env":       "prod",
	}
	return &series{name: n, labels: labels, fp: fingerprint(labels)}
}

// fingerprint is Alertmanager's fingerprint of a label set: 16 hex digits.
func fingerprint(labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// next returns the next request to send, and false when the generator
// is finished and everything held back has been returned.
func (g *generator) next() (request, bool) {
	for {
		if len(g.out) > 0 {
			r := g.out[0]
			g.out = g.out[1:]
			return r, true
		}
		if g.finished {
			return request{}, false
		}
		if g.o.DeployEvery > 0 && g.sinceDeploy >= g.o.DeployEvery {
			g.sinceDeploy = 0
			g.out = append(g.out, g.deploy())
			continue
		}
		g.sinceDeploy++
		if g.o.RepeatRatio > 0 && g.rng.Float64() < g.o.RepeatRatio {
			if r, ok := g.repeat(); ok {
				g.out = append(g.out, r)
				continue
			}
		}
		i := g.rng.IntN(len(g.services))
		r := g.fresh(g.services[i])
		if g.o.OutOfOrder > 0 && len(g.held[i]) < maxHeld && g.rng.Float64() < g.o.OutOfOrder {
			// Held back until the next notification of this service has
			// gone: its resolutions then arrive before these firings.
			r.late = true
			g.held[i] = append(g.held[i], r)
			continue
		}
		g.out = append(g.out, r)
		held := g.held[i]
		g.rng.Shuffle(len(held), func(a, b int) { held[a], held[b] = held[b], held[a] })
		g.out = append(g.out, held...)
		delete(g.held, i)
	}
}

// finish stops generating: next returns what is held back, then false.
func (g *generator) finish() {
	if g.finished {
		return
	}
	g.finished = true
	for i := range g.services {
		g.out = append(g.out, g.held[i]...)
	}
	g.held = nil
}

// fresh is a notification for s with new events only: each picked alert
// either starts firing (a new occurrence, startsAt a little before now)
// or resolves (endsAt now). A resolved alert's series fires again later
// with probability FlapRate; otherwise a new pod replaces it.
func (g *generator) fresh(s *service) request {
	now := g.now().UTC()
	k := min(g.o.AlertsPerNotification, len(s.series))
	picked := g.rng.Perm(len(s.series))[:k]
	slices.Sort(picked)
	var alerts []amAlert
	for _, p := range picked {
		alerts = append(alerts, g.step(s, p, now))
	}
	r := g.notification(s, alerts)
	r.alerts = alerts
	g.freshEvents += len(alerts)
	return r
}

func (g *generator) step(s *service, p int, now time.Time) amAlert {
	se := s.series[p]
	an := alertNames[se.name]
	if !se.firing {
		start := now.Add(-time.Duration(g.rng.Int64N(int64(maxFiringAge)))).Truncate(time.Millisecond)
		if !start.After(se.endedAt) {
			start = se.endedAt.Add(time.Millisecond)
		}
		se.firing, se.startsAt = true, start
	} else {
		se.firing = false
		se.endedAt = now.Truncate(time.Millisecond)
		// A series picked again within the millisecond: still no end
		// before its start, and no drift into the future.
		if early := se.startsAt.Add(time.Millisecond); se.endedAt.Before(early) {
			se.endedAt = early
		}
	}
	a := amAlert{
		Status: "firing",
		Labels: se.labels,
		Annotations: map[string]string{
			"summary":     fmt.Sprintf(an.summary, s.name),
			"description": fmt.Sprintf(an.description, 2+g.rng.Float64()*8),
			"runbook_url": "https://runbooks.example.com/" + s.name + "/" + strings.ToLower(an.name),
		},
		StartsAt:     se.startsAt,
		GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=" + strings.ReplaceAll(an.expr, " ", "+") + "&g0.tab=1",
		Fingerprint:  se.fp,
	}
	if !se.firing {
		a.Status, a.EndsAt = "resolved", se.endedAt
		if g.rng.Float64() >= g.o.FlapRate {
			s.series[p] = g.newSeries(s, se.name)
		}
	}
	return a
}

// repeat sends again alerts of one service acknowledged within the
// repeat window, as Alertmanager does on every group_interval and
// repeat_interval; false when the service has none yet.
func (g *generator) repeat() (request, bool) {
	s := g.services[g.rng.IntN(len(g.services))]
	recent := g.acked.recentAlerts(s.name, g.now().Add(-repeatWindow))
	if len(recent) == 0 {
		return request{}, false
	}
	k := min(g.o.AlertsPerNotification, len(recent))
	picked := g.rng.Perm(len(recent))[:k]
	slices.Sort(picked)
	alerts := make([]amAlert, k)
	for i, p := range picked {
		alerts[i] = recent[p].alert
	}
	r := g.notification(s, alerts)
	r.repeat = true
	return r, true
}

// notification wraps alerts of s into Alertmanager's webhook body.
func (g *generator) notification(s *service, alerts []amAlert) request {
	n := amNotification{
		Receiver:          "hindsight",
		Status:            "resolved",
		Alerts:            alerts,
		GroupLabels:       map[string]string{"service": s.name},
		CommonLabels:      common(alerts, func(a amAlert) map[string]string { return a.Labels }),
		CommonAnnotations: common(alerts, func(a amAlert) map[string]string { return a.Annotations }),
		ExternalURL:       "http://alertmanager.example:9093",
		Version:           "4",
		GroupKey:          fmt.Sprintf(`{}:{service=%q}`, s.name),
	}
	ids := make([]string, len(alerts))
	for i, a := range alerts {
		if a.Status == "firing" {
			n.Status = "firing"
		}
		ids[i] = hindsight.AlertEventID(a.Fingerprint, a.StartsAt, a.Status)
	}
	body, err := json.Marshal(n)
	if err != nil {
		panic(err) // maps of strings and times always marshal
	}
	return request{kind: kindAlerts, path: pathAlertmanager, service: s.name, body: body, ids: ids}
}

// common returns the key-value pairs every alert shares, as
// Alertmanager's commonLabels and commonAnnotations.
func common(alerts []amAlert, kv func(amAlert) map[string]string) map[string]string {
	out := map[string]string{}
	for i, a := range alerts {
		m := kv(a)
		if i == 0 {
			for k, v := range m {
				out[k] = v
			}
			continue
		}
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// deploy is one deploy of a random service, with a deploy ID unique to
// the run: mostly successes, some failures and rollbacks.
func (g *generator) deploy() request {
	s := g.services[g.rng.IntN(len(g.services))]
	s.deploys++
	status := "succeeded"
	switch x := g.rng.Float64(); {
	case x < 0.05:
		status = "rolled_back"
	case x < 0.15:
		status = "failed"
	case x < 0.25:
		status = "started"
	}
	t := g.now().UTC().Add(-time.Duration(g.rng.Int64N(int64(30 * time.Second)))).Truncate(time.Millisecond)
	b := deployBody{
		ID:          fmt.Sprintf("load-%s-%s-%d", g.run, s.name, s.deploys),
		Service:     s.name,
		Environment: "prod",
		Version:     fmt.Sprintf("v1.%d.%d", s.deploys, g.rng.IntN(10)),
		Status:      status,
		Time:        t,
		Actor:       []string{"ci-bot", "argocd", "alice", "bob"}[g.rng.IntN(4)],
		Commit:      g.hex(40),
		URL:         fmt.Sprintf("https://ci.example.com/%s/runs/%d", s.name, s.deploys),
		Description: "rollout of " + s.name,
		Labels:      map[string]string{"cluster": s.cluster},
	}
	if status == "succeeded" {
		s.replicaSet = g.hex(9)
	}
	id := hindsight.DeployEventID(hindsight.DeployDetails{ID: b.ID, Environment: b.Environment, Version: b.Version, Status: b.Status}, b.Service, b.Time)
	body, err := json.Marshal(b)
	if err != nil {
		panic(err)
	}
	g.freshEvents++
	return request{kind: kindDeploy, path: pathDeploy, service: s.name, body: body, ids: []string{id}}
}
