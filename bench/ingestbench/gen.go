package main

import (
	"fmt"
	"strconv"
	"time"
)

// Shapes of target: the same alerts, in the body each one takes.
const (
	ShapeHindsight    = "hindsight"    // POST /hooks/alertmanager, webhook payload
	ShapeAlertmanager = "alertmanager" // POST /api/v2/alerts, postable alerts
	ShapeBare         = "bare"         // webhook payload to bench/bareserver
)

// shapePaths are the endpoint each shape posts to, and the path that
// answers 200 once the target is ready.
var shapePaths = map[string]struct{ post, ready string }{
	ShapeHindsight:    {"/hooks/alertmanager", "/readyz"},
	ShapeAlertmanager: {"/api/v2/alerts", "/-/ready"},
	ShapeBare:         {"/hooks/alertmanager", "/healthz"},
}

// alertKind is an alert rule every instance of a service can raise.
type alertKind struct {
	name, severity, summary, expr string
}

var alertKinds = []alertKind{
	{"HighLatency", "critical", "p99 latency above 2s on %s",
		`histogram_quantile(0.99, sum by (le, instance) (rate(http_request_duration_seconds_bucket[5m]))) > 2`},
	{"HighErrorRate", "critical", "5xx ratio above 5%% on %s",
		`sum by (instance) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (instance) (rate(http_requests_total[5m])) > 0.05`},
	{"PodCrashLooping", "warning", "pod of %s restarting",
		`increase(kube_pod_container_status_restarts_total[15m]) > 3`},
	{"DiskWillFillIn4Hours", "warning", "disk of %s fills within 4h",
		`predict_linear(node_filesystem_avail_bytes[6h], 4*3600) < 0`},
	{"KubePodNotReady", "warning", "pod of %s not ready for 15m",
		`sum by (namespace, pod) (kube_pod_status_phase{phase=~"Pending|Unknown"}) > 0`},
}

var serviceNames = []string{"checkout", "payments", "search", "cart", "catalog",
	"shipping", "auth", "recommendations", "inventory", "notifications"}

// service is one Alertmanager group: its alerts share a notification.
type service struct {
	name, cluster, replicaSet string
	groupKey, commonLabels    []byte // pre-encoded JSON
}

// generator makes the request bodies. Request n always holds the same
// alerts (labels, annotations, fingerprints) whatever the shape, so every
// target gets the same work; only startsAt follows the clock. Each alert
// of a run has its own label set, hence its own fingerprint.
type generator struct {
	shape    string
	perReq   int
	run      string // in pod names: fingerprints differ between runs
	services []service
	kinds    []kindText
}

// kindText is an alertKind's JSON pieces, per service.
type kindText struct {
	name, severity []byte
	summary        [][]byte // by service
	generatorURL   []byte
}

func newGenerator(shape string, perReq, services int, run string) *generator {
	g := &generator{shape: shape, perReq: perReq, run: run}
	for i := range services {
		name := serviceNames[i%len(serviceNames)]
		if i >= len(serviceNames) {
			name += "-" + strconv.Itoa(i/len(serviceNames))
		}
		s := service{name: name, cluster: []string{"eu-1", "us-1"}[i%2], replicaSet: fmt.Sprintf("%x", 0x6b5d4f7c9+i*7919)[:9]}
		s.groupKey = appendString(nil, `{}:{service="`+name+`"}`)
		s.commonLabels = appendObject(nil, [][2]string{
			{"cluster", s.cluster}, {"env", "prod"}, {"job", name}, {"namespace", "shop"}, {"service", name},
		})
		g.services = append(g.services, s)
	}
	for _, k := range alertKinds {
		kt := kindText{
			name:         appendString(nil, k.name),
			severity:     appendString(nil, k.severity),
			generatorURL: appendString(nil, "http://prometheus.example:9090/graph?g0.expr="+k.expr+"&g0.tab=1"),
		}
		for _, s := range g.services {
			kt.summary = append(kt.summary, appendString(nil, fmt.Sprintf(k.summary, s.name)))
		}
		g.kinds = append(g.kinds, kt)
	}
	return g
}

// label is one name and value; an alert's labels are kept sorted by
// name, as Alertmanager's fingerprint hashes them.
type label struct{ name, value string }

// alertLabels returns alert j of request n, labels sorted by name.
func (g *generator) alertLabels(n uint64, j int, buf []label) (svc int, kind int, ls []label) {
	svc = int(n % uint64(len(g.services)))
	seq := n*uint64(g.perReq) + uint64(j)
	kind = int(seq % uint64(len(alertKinds)))
	s := &g.services[svc]
	pod := s.name + "-" + s.replicaSet + "-" + g.run + strconv.FormatUint(seq, 36)
	k := &alertKinds[kind]
	return svc, kind, append(buf[:0],
		label{"alertname", k.name},
		label{"cluster", s.cluster},
		label{"container", s.name},
		label{"env", "prod"},
		label{"instance", pod + ":8080"},
		label{"job", s.name},
		label{"namespace", "shop"},
		label{"pod", pod},
		label{"service", s.name},
		label{"severity", k.severity},
	)
}

// fingerprint is Alertmanager's fingerprint of a sorted label set
// (prometheus/common/model's FNV-1a over name, 0xff, value, 0xff).
func fingerprint(ls []label) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
		sep      = 0xff
	)
	h := uint64(offset64)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime64
		}
		h ^= sep
		h *= prime64
	}
	for _, l := range ls {
		add(l.name)
		add(l.value)
	}
	return h
}

// body appends the body of request n, its alerts starting at startsAt,
// to dst.
func (g *generator) body(dst []byte, n uint64, startsAt time.Time) []byte {
	var lbuf [10]label
	svc := int(n % uint64(len(g.services)))
	s := &g.services[svc]
	ts := startsAt.UTC().AppendFormat(nil, time.RFC3339)
	if g.shape == ShapeAlertmanager {
		dst = append(dst, '[')
	} else {
		dst = append(dst, `{"receiver":"hindsight","status":"firing","alerts":[`...)
	}
	for j := range g.perReq {
		_, kind, ls := g.alertLabels(n, j, lbuf[:0])
		kt := &g.kinds[kind]
		if j > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		if g.shape != ShapeAlertmanager {
			dst = append(dst, `"status":"firing",`...)
		}
		dst = append(dst, `"labels":{`...)
		for i, l := range ls {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, l.name)
			dst = append(dst, ':')
			dst = appendString(dst, l.value)
		}
		dst = append(dst, `},"annotations":{"description":`...)
		dst = appendString(dst, "firing on "+ls[4].value+" since "+string(ts))
		dst = append(dst, `,"runbook_url":"https://runbooks.example.com/`...)
		dst = append(dst, kt.name[1:len(kt.name)-1]...)
		dst = append(dst, `","summary":`...)
		dst = append(dst, kt.summary[svc]...)
		dst = append(dst, `},"startsAt":"`...)
		dst = append(dst, ts...)
		dst = append(dst, '"')
		if g.shape != ShapeAlertmanager {
			dst = append(dst, `,"endsAt":"0001-01-01T00:00:00Z"`...)
		}
		dst = append(dst, `,"generatorURL":`...)
		dst = append(dst, kt.generatorURL...)
		if g.shape != ShapeAlertmanager {
			dst = append(dst, `,"fingerprint":"`...)
			dst = appendHex16(dst, fingerprint(ls))
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	if g.shape == ShapeAlertmanager {
		return append(dst, ']')
	}
	dst = append(dst, `],"groupLabels":{"service":`...)
	dst = appendString(dst, s.name)
	dst = append(dst, `},"commonLabels":`...)
	dst = append(dst, s.commonLabels...)
	dst = append(dst, `,"commonAnnotations":{},"externalURL":"http://alertmanager.example:9093","version":"4","groupKey":`...)
	dst = append(dst, s.groupKey...)
	return append(dst, `,"truncatedAlerts":0}`...)
}

func appendHex16(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		dst = append(dst, digits[(v>>uint(i))&0xf])
	}
	return dst
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendObject appends a JSON object of string values.
func appendObject(dst []byte, kv [][2]string) []byte {
	dst = append(dst, '{')
	for i, p := range kv {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, p[0])
		dst = append(dst, ':')
		dst = appendString(dst, p[1])
	}
	return append(dst, '}')
}
