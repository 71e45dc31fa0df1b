package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// sourceGitHub labels the metrics of POST /hooks/github. It is a metric
// label only: the events are deploys, with hindsight.SourceDeploy.
const sourceGitHub hindsight.Source = "github"

// The headers GitHub sends with every delivery.
const (
	headerGitHubEvent    = "X-GitHub-Event"
	headerGitHubDelivery = "X-GitHub-Delivery"
)

// gitHubStates maps a deployment_status state to a deploy status.
// "inactive" is missing on purpose: GitHub sets it on an older deployment
// when a newer one to the same environment succeeds, which is not a
// deploy.
var gitHubStates = map[string]string{
	"pending":     "started",
	"queued":      "started",
	"in_progress": "started",
	"success":     "succeeded",
	"failure":     "failed",
	"error":       "failed",
}

// gitHubStateNames lists the states Hindsight knows, for messages.
const gitHubStateNames = "pending, queued, in_progress, success, failure, error, inactive"

// IgnoredResponse is the answer to a GitHub delivery that records
// nothing: an event type other than deployment_status (Ignored is its
// name), or a deployment status that is not a deploy.
type IgnoredResponse struct {
	Ignored string `json:"ignored"`
	Reason  string `json:"reason,omitempty"`
}

// gitHubEndpoint is POST /hooks/github. With a GitHub secret, only a
// matching X-Hub-Signature-256 is accepted; without one, what POST
// /hooks/deploy accepts (GitHub sends basic auth given in the hook's URL).
func (h *Handler) gitHubEndpoint(deploy Credentials, deploySig, gitHubSig bodySigner) endpoint {
	ep := endpoint{source: sourceGitHub, creds: deploy, sig: deploySig, status: http.StatusOK,
		maxBody: h.opts.MaxBodyBytes, checkType: checkGitHubContentType, build: h.gitHub}
	if gitHubSig != nil {
		ep.creds, ep.sig = Credentials{}, gitHubSig
	}
	return ep
}

// checkGitHubContentType accepts what a GitHub webhook may be set to
// send: application/json, or application/x-www-form-urlencoded with the
// JSON in the "payload" field (the default of a repository webhook).
func checkGitHubContentType(h http.Header) error {
	if media, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && media == "application/x-www-form-urlencoded" {
		return nil
	}
	return checkContentType(h)
}

func (h *Handler) gitHub(_ context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	if media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); media == "application/x-www-form-urlencoded" {
		var err error
		if body, err = gitHubFormPayload(body); err != nil {
			return batch{}, err
		}
	}
	event := r.Header.Get(headerGitHubEvent)
	ev, reply, err := parseGitHub(event, body, receivedAt)
	if err != nil {
		return batch{}, err
	}
	if reply != nil {
		h.log.Debug("github delivery recorded nothing", "event", clip(event), "delivery", clip(r.Header.Get(headerGitHubDelivery)), "remote", r.RemoteAddr)
		return batch{reply: reply}, nil
	}
	return batch{events: []hindsight.Event{ev}}, nil
}

// gitHubFormPayload returns the "payload" field of a form-encoded
// delivery. The signature covered the form; the JSON inside it is
// checked for UTF-8 here.
func gitHubFormPayload(body []byte) ([]byte, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest(reasonBadValue, "form body: %v", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, badRequest(reasonMissingField, "form body has no \"payload\" field: set the GitHub webhook's content type to application/json")
	}
	if err := checkUTF8([]byte(payload)); err != nil {
		return nil, err
	}
	return []byte(payload), nil
}

// gitHubUser is the part of a GitHub user object Hindsight reads.
type gitHubUser struct {
	Login string `json:"login"`
}

// gitHubPayload is the part of a deployment_status delivery Hindsight
// reads. Decoding is lenient: GitHub adds fields over time.
type gitHubPayload struct {
	DeploymentStatus *struct {
		ID          int64       `json:"id"`
		State       string      `json:"state"`
		Creator     *gitHubUser `json:"creator"`
		Description string      `json:"description"`
		Environment string      `json:"environment"`
		TargetURL   string      `json:"target_url"`
		LogURL      string      `json:"log_url"`
		CreatedAt   string      `json:"created_at"`
		UpdatedAt   string      `json:"updated_at"`
	} `json:"deployment_status"`
	Deployment *struct {
		ID          int64           `json:"id"`
		SHA         string          `json:"sha"`
		Ref         string          `json:"ref"`
		Payload     json.RawMessage `json:"payload"`
		Environment string          `json:"environment"`
		Description string          `json:"description"`
		Creator     *gitHubUser     `json:"creator"`
	} `json:"deployment"`
	Repository *struct {
		Name string `json:"name"`
	} `json:"repository"`
	Sender *gitHubUser `json:"sender"`
}

// parseGitHub turns one GitHub delivery into a deploy event, or into the
// reply to a delivery that records nothing (ping, other event types, an
// inactive status). Errors are *requestError.
//
// A deployment_status becomes a deploy of service deployment.payload.service
// (when the deployment was created with one) or else the repository's
// name, to deployment.environment, at deployment_status.updated_at. Its
// deploy ID is "github-deployment-<deployment.id>", so the statuses of one
// deployment are one deploy, as the correlator counts them: a redelivery
// (same deployment, same status) collapses onto the same event, and so do
// statuses that map to the same deploy status (queued, then in_progress).
func parseGitHub(event string, body []byte, receivedAt time.Time) (hindsight.Event, *IgnoredResponse, error) {
	switch event {
	case "":
		return hindsight.Event{}, nil, badRequest(reasonMissingField, "header %s is missing: POST /hooks/github takes GitHub webhook deliveries", headerGitHubEvent)
	case "ping":
		// GitHub's check that the hook works; it carries nothing to record.
		return hindsight.Event{}, &IgnoredResponse{Ignored: "ping", Reason: "the webhook reaches Hindsight; it records deployment_status events"}, nil
	case "deployment_status":
	default:
		return hindsight.Event{}, &IgnoredResponse{Ignored: clip(event), Reason: "Hindsight records deployment_status events only: subscribe the webhook to Deployment statuses"}, nil
	}
	var p gitHubPayload
	if err := decodeObject(body, &p, false); err != nil {
		return hindsight.Event{}, nil, err
	}
	st, d := p.DeploymentStatus, p.Deployment
	switch {
	case st == nil:
		return hindsight.Event{}, nil, badRequest(reasonMissingField, "field \"deployment_status\" is missing")
	case d == nil:
		return hindsight.Event{}, nil, badRequest(reasonMissingField, "field \"deployment\" is missing")
	case d.ID == 0:
		return hindsight.Event{}, nil, badRequest(reasonMissingField, "field \"deployment.id\" is missing")
	case st.State == "":
		return hindsight.Event{}, nil, badRequest(reasonMissingField, "field \"deployment_status.state\" is missing")
	}
	if st.State == "inactive" {
		return hindsight.Event{}, &IgnoredResponse{Ignored: "deployment_status", Reason: "state inactive: a newer deployment replaced this one, which is not a deploy"}, nil
	}
	status, ok := gitHubStates[st.State]
	if !ok {
		return hindsight.Event{}, nil, badRequest(reasonBadValue, "field \"deployment_status.state\": %q is not one of %s", clip(st.State), gitHubStateNames)
	}
	service := gitHubPayloadService(d.Payload)
	if service == "" && p.Repository != nil {
		service = strings.TrimSpace(p.Repository.Name)
	}
	if service == "" {
		return hindsight.Event{}, nil, badRequest(reasonMissingField, "field \"repository.name\" is missing (and deployment.payload has no \"service\")")
	}
	field, value := "deployment_status.updated_at", st.UpdatedAt
	if strings.TrimSpace(value) == "" {
		field, value = "deployment_status.created_at", st.CreatedAt
	}
	var at string
	if value = strings.TrimSpace(value); value != "" {
		t, err := time.Parse(time.RFC3339Nano, value)
		if err != nil {
			return hindsight.Event{}, nil, badRequest(reasonBadValue, "field %q: %q is not an RFC 3339 time", field, clip(value))
		}
		if err := checkTime(fmt.Sprintf("field %q:", field), t, receivedAt); err != nil {
			return hindsight.Event{}, nil, badRequest(reasonBadValue, "%s", err.Error())
		}
		at = t.UTC().Format(time.RFC3339Nano)
	}
	ev, err := deployEvent(deployPayload{
		ID:          "github-deployment-" + strconv.FormatInt(d.ID, 10),
		Service:     service,
		Environment: firstNonBlank(d.Environment, st.Environment),
		Version:     gitHubVersion(d.Ref, d.SHA),
		Status:      status,
		Time:        at,
		Actor:       firstNonBlank(login(st.Creator), login(d.Creator), login(p.Sender)),
		Commit:      d.SHA,
		URL:         firstNonBlank(st.TargetURL, st.LogURL),
		Description: firstNonBlank(st.Description, d.Description),
	}, receivedAt)
	return ev, nil, err
}

// gitHubPayloadService returns the "service" of a deployment's payload:
// the JSON object given when the deployment was created, which the API
// also hands back as a string holding JSON when it was created so.
func gitHubPayloadService(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var obj struct {
		Service any `json:"service"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return ""
	}
	service, _ := obj.Service.(string)
	return strings.TrimSpace(service)
}

// gitHubVersion is the deployment's ref (a tag or a branch), or the
// short SHA when the ref is missing or is the SHA itself.
func gitHubVersion(ref, sha string) string {
	ref, sha = strings.TrimSpace(ref), strings.TrimSpace(sha)
	if ref != "" && ref != sha {
		return ref
	}
	return truncate(sha, 7)
}

func login(u *gitHubUser) string {
	if u == nil {
		return ""
	}
	return u.Login
}

func firstNonBlank(values ...string) string {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
