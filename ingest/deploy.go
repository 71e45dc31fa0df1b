package ingest

import (
	"fmt"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// deployPayload is the body of POST /hooks/deploy. Time is a string so
// that a bad value gets a message naming the field, which time.Time's own
// decoding does not give.
type deployPayload struct {
	ID          string `json:"id"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Version     string `json:"version"`
	Status      string `json:"status"`
	Time        string `json:"time"`
	Actor       string `json:"actor"`
	Commit      string `json:"commit"`
	URL         string `json:"url"`
	Description string `json:"description"`
	// Labels say where the deploy went beyond service and environment
	// (cluster, region), for correlation rules' shared_labels.
	Labels map[string]string `json:"labels"`
}

// maxDeployLabels bounds a deploy's labels.
const maxDeployLabels = 32

// parseDeploy turns a deploy webhook body into one event. A deploy without
// a time happened when it was received. Errors are *requestError.
func parseDeploy(body []byte, receivedAt time.Time) (hindsight.Event, error) {
	var p deployPayload
	if err := decodeObject(body, &p, true); err != nil {
		return hindsight.Event{}, err
	}
	return deployEvent(p, receivedAt)
}

func deployEvent(p deployPayload, receivedAt time.Time) (hindsight.Event, error) {
	// Surrounding blanks would split one service into two correlation
	// keys and one deploy into two IDs.
	service := strings.TrimSpace(p.Service)
	d := hindsight.DeployDetails{
		ID:          strings.TrimSpace(p.ID),
		Environment: strings.TrimSpace(p.Environment),
		Version:     strings.TrimSpace(p.Version),
		Status:      strings.TrimSpace(p.Status),
		Actor:       strings.TrimSpace(p.Actor),
		Commit:      strings.TrimSpace(p.Commit),
		URL:         strings.TrimSpace(p.URL),
		Description: p.Description,
	}
	if service == "" {
		return hindsight.Event{}, badRequest(reasonMissingField, "field \"service\" is missing")
	}
	if d.Status == "" {
		return hindsight.Event{}, badRequest(reasonMissingField, "field \"status\" is missing: want one of %s", strings.Join(hindsight.DeployStatuses, ", "))
	}
	kind, ok := hindsight.DeployKind(d.Status)
	if !ok {
		return hindsight.Event{}, badRequest(reasonBadValue, "field \"status\": %q is not one of %s", clip(d.Status), strings.Join(hindsight.DeployStatuses, ", "))
	}
	if len(p.Labels) > maxDeployLabels {
		return hindsight.Event{}, badRequest(reasonBadValue, "field \"labels\": %d labels, at most %d", len(p.Labels), maxDeployLabels)
	}
	for k, v := range p.Labels {
		if !validLabelName(k) {
			return hindsight.Event{}, badRequest(reasonBadValue, "field \"labels\": %q is not a label name (letters, digits and _, not starting with a digit)", clip(k))
		}
		if k == "service" || k == "environment" {
			return hindsight.Event{}, badRequest(reasonBadValue, "field \"labels\": %q is set by the field of that name", k)
		}
		if len(v) > 1024 {
			return hindsight.Event{}, badRequest(reasonBadValue, "field \"labels\": the value of %q is longer than 1024 bytes", k)
		}
	}
	t := receivedAt
	if s := strings.TrimSpace(p.Time); s != "" {
		parsed, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return hindsight.Event{}, badRequest(reasonBadValue, "field \"time\": %q is not an RFC 3339 time like 2026-11-20T10:42:00Z", clip(s))
		}
		t = parsed.UTC()
		if err := checkTime("field \"time\":", t, receivedAt); err != nil {
			return hindsight.Event{}, badRequest(reasonBadValue, "%s", err.Error())
		}
	}
	ev := hindsight.Event{
		ID:         hindsight.DeployEventID(d, service, t),
		Kind:       kind,
		Source:     hindsight.SourceDeploy,
		Time:       t,
		ReceivedAt: receivedAt,
		Service:    service,
		Labels:     deployLabels(service, d.Environment, p.Labels),
		Summary:    oneLine(deploySummary(service, d)),
		Deploy:     &d,
	}
	return ev, nil
}

func deployLabels(service, env string, extra map[string]string) map[string]string {
	labels := map[string]string{"service": service}
	for k, v := range extra {
		if v = strings.TrimSpace(v); v != "" {
			labels[k] = strings.ToValidUTF8(v, "\uFFFD")
		}
	}
	if env != "" {
		labels["environment"] = env
	}
	return labels
}

// deploySummary reads like "Deploy of checkout v2.3.1 to prod succeeded
// (by alice)", leaving out what the pipeline did not say.
func deploySummary(service string, d hindsight.DeployDetails) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Deploy of %s", service)
	if d.Version != "" {
		fmt.Fprintf(&b, " %s", d.Version)
	}
	if d.Environment != "" {
		fmt.Fprintf(&b, " to %s", d.Environment)
	}
	fmt.Fprintf(&b, " %s", strings.ReplaceAll(d.Status, "_", " "))
	if d.Actor != "" {
		fmt.Fprintf(&b, " (by %s)", d.Actor)
	}
	return b.String()
}

// validLabelName is Prometheus's label name syntax.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
