package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-sre/hindsight"
)

// Route patterns served by Handler, in http.ServeMux syntax.
const (
	RouteAlertmanager = "POST /hooks/alertmanager"
	RouteDeploy       = "POST /hooks/deploy"
	RouteGitHub       = "POST /hooks/github"
	RouteNotes        = "POST /api/v1/incidents/{id}/notes"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxAlertmanagerBodyBytes is larger: Alertmanager sends a
	// whole group in one notification and never retries a 4xx, so a limit
	// a big outage can exceed would lose the group, resolutions included.
	// 32 MiB is about 30,000 alerts with Kubernetes-sized label sets.
	DefaultMaxAlertmanagerBodyBytes = 32 << 20
	DefaultPublishTimeout           = 10 * time.Second
)

// retryAfter is the Retry-After of a 503, in seconds: long enough for a
// NATS restart, short enough that Alertmanager's own backoff dominates.
const retryAfter = "5"

// Options configure a Handler. Publisher is required.
type Options struct {
	Publisher Publisher
	// Incidents serves the notes endpoint; without it the route is not
	// registered.
	Incidents Incidents
	Auth      AuthConfig
	// MaxBodyBytes bounds a deploy or note body (default
	// DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxAlertmanagerBodyBytes bounds an Alertmanager notification
	// (default DefaultMaxAlertmanagerBodyBytes).
	MaxAlertmanagerBodyBytes int64
	// PublishTimeout bounds the work of one request: the incident lookup
	// and the publish (default DefaultPublishTimeout).
	PublishTimeout time.Duration
	// AwaitFold bounds how long a human act (an edit, a declared
	// incident) waits for the correlator to fold it, so that the answer
	// says what it did (default DefaultAwaitFold; negative: do not wait,
	// answer 202, as a process without the correlate role must).
	AwaitFold time.Duration
	// Now stamps ReceivedAt (default time.Now).
	Now func() time.Time
	// Logger gets one line per refused request (nil: discard).
	Logger *slog.Logger
	// Registerer gets the ingest metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Handler serves the webhook and notes endpoints. Mount it for each
// pattern of Routes, or at the root.
type Handler struct {
	mux     *http.ServeMux
	routes  []string
	opts    Options
	log     *slog.Logger
	metrics *metrics
}

// Response is the JSON body of a successful request: how many events were
// published, how many of them the stream already had, their IDs in the
// order of the request, and the alerts that were left out and why.
type Response struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Events     []string    `json:"events"`
	Rejected   []Rejection `json:"rejected,omitempty"`
}

// errorResponse is the JSON body of every error.
type errorResponse struct {
	Error    string      `json:"error"`
	Rejected []Rejection `json:"rejected,omitempty"`
}

// New returns a Handler for opts.
func New(opts Options) (*Handler, error) {
	if opts.Publisher == nil {
		return nil, errors.New("ingest: a Publisher is required")
	}
	for _, c := range []struct {
		name  string
		creds Credentials
	}{{"alertmanager", opts.Auth.Alertmanager}, {"deploy", opts.Auth.Deploy}, {"api", opts.Auth.API}} {
		if err := c.creds.validate(); err != nil {
			return nil, fmt.Errorf("ingest: %s credentials: %w", c.name, err)
		}
	}
	deploySig, gitHubSig, err := opts.Auth.signers()
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if opts.MaxAlertmanagerBodyBytes <= 0 {
		opts.MaxAlertmanagerBodyBytes = DefaultMaxAlertmanagerBodyBytes
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AwaitFold == 0 {
		opts.AwaitFold = DefaultAwaitFold
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	h := &Handler{mux: http.NewServeMux(), opts: opts, log: log.With("component", "ingest"), metrics: m}
	h.handle(RouteAlertmanager, endpoint{source: hindsight.SourceAlertmanager, creds: opts.Auth.Alertmanager, status: http.StatusOK, maxBody: opts.MaxAlertmanagerBodyBytes, build: h.alertmanager})
	h.handle(RouteDeploy, endpoint{source: hindsight.SourceDeploy, creds: opts.Auth.Deploy, sig: deploySig, status: http.StatusOK, maxBody: opts.MaxBodyBytes, build: h.deploy})
	h.handle(RouteGitHub, h.gitHubEndpoint(opts.Auth.Deploy, deploySig, gitHubSig))
	if opts.Incidents != nil {
		h.handle(RouteNotes, endpoint{source: hindsight.SourceNote, creds: opts.Auth.API, status: http.StatusCreated, maxBody: opts.MaxBodyBytes, build: h.note})
		h.humanEndpoints()
	}
	return h, nil
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Routes returns the patterns h serves, so that the caller can mount h on
// its own mux beside other routes.
func (h *Handler) Routes() []string { return append([]string(nil), h.routes...) }

// batch is what an endpoint makes of a request: the events to publish and
// the alerts it left out.
type batch struct {
	events   []hindsight.Event
	rejected []Rejection
	// reply, when set, is the answer to a request that records nothing
	// (a GitHub ping or an event type Hindsight ignores, an edit of a
	// stale version), with replyStatus (default the endpoint's).
	reply       any
	replyStatus int
	// await, when set, answers once the events are published: it waits
	// for the correlator and says what they did.
	await func(context.Context) (int, any)
}

// endpoint is one route: who may call it, how a body becomes events, and
// the status of success.
type endpoint struct {
	source hindsight.Source
	creds  Credentials
	// sig, when set, is a signature over the body that authenticates a
	// request as well as creds do (or alone, when creds are not
	// configured).
	sig     bodySigner
	status  int
	maxBody int64
	// checkType checks the Content-Type (default checkContentType).
	checkType func(http.Header) error
	// build returns a *requestError for the caller's mistakes; any other
	// error is ours (a failed incident lookup).
	build func(ctx context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error)
}

func (h *Handler) handle(pattern string, ep endpoint) {
	h.routes = append(h.routes, pattern)
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, ep) })
}

// serve runs one request through the same steps for every endpoint:
// authenticate before reading anything, then check, read, build, publish.
// (A signature over the body is checked once the body is read, before
// anything looks into it: see endpoint.read.)
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ep endpoint) {
	receivedAt := h.opts.Now().UTC()
	body, err := ep.read(w, r, receivedAt)
	if err != nil {
		if re := (*requestError)(nil); errors.As(err, &re) && re.status == http.StatusUnauthorized {
			ep.creds.Challenge(w.Header())
		}
		h.fail(w, r, ep.source, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.PublishTimeout)
	defer cancel()
	b, err := ep.build(ctx, r, body, receivedAt)
	if err != nil {
		h.fail(w, r, ep.source, err)
		return
	}
	if b.reply != nil {
		writeJSON(w, cmp.Or(b.replyStatus, ep.status), b.reply)
		return
	}
	dups, err := h.publish(ctx, ep.source, b.events)
	if err != nil {
		h.fail(w, r, ep.source, err)
		return
	}
	if len(b.rejected) > 0 {
		h.metrics.rejected.WithLabelValues(string(ep.source), reasonUnusableAlert).Add(float64(len(b.rejected)))
		h.log.Warn("alerts rejected", "source", ep.source, "remote", r.RemoteAddr,
			"rejected", len(b.rejected), "accepted", len(b.events), "error", joinRejections(b.rejected))
	}
	if b.await != nil {
		status, reply := b.await(r.Context())
		writeJSON(w, status, reply)
		return
	}
	ids := make([]string, len(b.events))
	for i, ev := range b.events {
		ids[i] = ev.ID
	}
	writeJSON(w, ep.status, Response{Accepted: len(b.events), Duplicates: dups, Events: ids, Rejected: b.rejected})
}

func (h *Handler) alertmanager(_ context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	p, err := decodeAlertmanager(body)
	if err != nil {
		return batch{}, err
	}
	if p.TruncatedAlerts > 0 {
		// Alertmanager dropped alerts to respect max_alerts: they never
		// reach us, so say so where an operator will look.
		h.log.Warn("alertmanager truncated the notification", "remote", r.RemoteAddr,
			"truncated_alerts", p.TruncatedAlerts, "group_key", p.GroupKey)
	}
	events, rejected, err := alertEvents(p, receivedAt)
	return batch{events: events, rejected: rejected}, err
}

func (h *Handler) deploy(_ context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	ev, err := parseDeployMessage(body, r.Header.Get(headerWebhookID), receivedAt)
	if err != nil {
		return batch{}, err
	}
	return batch{events: []hindsight.Event{ev}}, nil
}

func (h *Handler) note(ctx context.Context, r *http.Request, body []byte, receivedAt time.Time) (batch, error) {
	n, err := parseNote(body, receivedAt)
	if err != nil {
		return batch{}, err
	}
	if n.author == "" {
		n.author, _, _ = r.BasicAuth()
	}
	id := r.PathValue("id")
	inc, err := h.opts.Incidents.Incident(ctx, id)
	if errors.Is(err, hindsight.ErrNotFound) {
		return batch{}, &requestError{status: http.StatusNotFound, reason: reasonNotFound, msg: fmt.Sprintf("incident %q not found", clip(id))}
	}
	if err != nil {
		return batch{}, fmt.Errorf("look up incident %s: %w", clip(id), err)
	}
	return batch{events: []hindsight.Event{noteEvent(n, inc, receivedAt)}}, nil
}

// publish hands events to the Publisher and records how long it took.
func (h *Handler) publish(ctx context.Context, source hindsight.Source, events []hindsight.Event) (int, error) {
	start := time.Now()
	dups, err := h.opts.Publisher.Publish(ctx, events)
	h.metrics.publishDuration.WithLabelValues(string(source)).Observe(time.Since(start).Seconds())
	if err != nil {
		return 0, fmt.Errorf("publish %d %s events: %w", len(events), source, err)
	}
	h.metrics.received.WithLabelValues(string(source)).Add(float64(len(events)))
	h.metrics.deduplicated.Add(float64(dups))
	return dups, nil
}

// fail answers err: a *requestError is the caller's mistake (4xx);
// anything else is ours (503 when the broker is away, so the sender
// retries; else 500).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, source hindsight.Source, err error) {
	var re *requestError
	if errors.As(err, &re) {
		h.refuse(w, r, source, re)
		return
	}
	if errors.Is(err, hindsight.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		// The sender retries; Hindsight's own readiness says the rest.
		h.log.Warn("request failed: broker unavailable", "source", source, "remote", r.RemoteAddr, "error", err)
		w.Header().Set("Retry-After", retryAfter)
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: "event broker unavailable: retry later"})
		return
	}
	h.log.Error("request failed", "source", source, "remote", r.RemoteAddr, "error", err)
	writeJSON(w, http.StatusInternalServerError, errorResponse{Error: "internal error: events not recorded"})
}

// refuse answers a caller's mistake, counts it and logs it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, source hindsight.Source, re *requestError) {
	n := max(len(re.rejected), 1) // every alert of an unusable notification counts
	h.metrics.rejected.WithLabelValues(string(source), re.reason).Add(float64(n))
	h.log.Warn("request rejected", "source", source, "remote", r.RemoteAddr,
		"status", re.status, "reason", re.reason, "error", re.msg)
	writeJSON(w, re.status, errorResponse{Error: re.msg, Rejected: re.rejected})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own response types reach here; they always marshal.
		panic(fmt.Sprintf("ingest: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
