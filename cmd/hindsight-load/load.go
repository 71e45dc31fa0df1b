package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// options configure a run; they are the command's flags.
type options struct {
	gen          genOptions
	server       string
	token        string
	rate         float64 // notifications per second; 0: as fast as possible
	duration     time.Duration
	events       int
	connections  int
	settle       time.Duration
	pollInterval time.Duration
	// probeRate is how many events a second are timed one by one to
	// their timeline (0: none); probeInterval is how often each asks.
	probeRate     float64
	probeInterval time.Duration
	pid           int
	progress      io.Writer // a line every progressEvery; nil: none
}

const (
	progressEvery = 5 * time.Second
	// maxRecent bounds the acknowledged alerts kept per service for repeats.
	maxRecent = 256
	// requestTimeout bounds one webhook call or one page of the poller.
	requestTimeout = 60 * time.Second
	// maxExamples bounds the IDs and messages a report lists.
	maxExamples = 20
)

// ack is the first 2xx answer that listed an event.
type ack struct {
	at     time.Time
	deploy bool
}

// tracker collects what happened. Workers, the poller and the generator
// (for repeats) share it.
type tracker struct {
	mu sync.Mutex

	answers              map[string]int // by HTTP status, or "transport"
	webhookAlerts        []time.Duration
	webhookDeploys       []time.Duration
	sentFresh, sentRep   int
	sentLate, sentDeploy int
	alertEvents          int // events listed in 2xx alert answers, duplicates included
	newAlertEvents       int
	deployEvents         int
	repeatWant           int // duplicates the 2xx repeat answers must report
	repeatGot            int
	freshDups            int
	mismatches           []string // the first maxExamples
	mismatchN            int
	rejected             int
	firstAck, lastAnswer time.Time

	acked  map[string]ack
	recent map[string][]sentAlert

	// Visibility, from the poller.
	seen      map[string]time.Time // first time an ID was on a timeline
	suspected map[string]bool      // deploy IDs among suspected changes
	counts    map[string]int       // timeline entries by ID, from the last complete poll
	pollDur   []time.Duration
	pollErrs  int
	lastErr   string

	// From the prober.
	probes        []time.Duration
	probesDropped int
	probesUnseen  []string
}

func newTracker() *tracker {
	return &tracker{
		answers:   map[string]int{},
		acked:     map[string]ack{},
		recent:    map[string][]sentAlert{},
		seen:      map[string]time.Time{},
		suspected: map[string]bool{},
	}
}

var _ ackLog = (*tracker)(nil)

func (t *tracker) recentAlerts(service string, since time.Time) []sentAlert {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []sentAlert
	for _, a := range t.recent[service] {
		if a.at.After(since) {
			out = append(out, a)
		}
	}
	return out
}

func (t *tracker) sent(r request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case r.kind == kindDeploy:
		t.sentDeploy++
	case r.repeat:
		t.sentRep++
	default:
		t.sentFresh++
		if r.late {
			t.sentLate++
		}
	}
}

// webhookAnswer is the body of a 2xx webhook answer.
type webhookAnswer struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	Events     []string          `json:"events"`
	Rejected   []json.RawMessage `json:"rejected"`
}

// answered records the answer to r: status (0 when there was none),
// body, latency, and the time the answer was complete. It returns the
// first alert event the answer acknowledged for the first time ("" if
// none), for the prober.
func (t *tracker) answered(r request, status int, body []byte, latency time.Duration, at time.Time) (fresh string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastAnswer = at
	if status == 0 {
		t.answers["transport"]++
		return
	}
	t.answers[strconv.Itoa(status)]++
	if status < 200 || status > 299 {
		return
	}
	var a webhookAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.mismatch("%s answered %d with %.80q: %v", r.path, status, body, err)
		return
	}
	if r.kind == kindDeploy {
		t.webhookDeploys = append(t.webhookDeploys, latency)
		t.deployEvents += a.Accepted
	} else {
		t.webhookAlerts = append(t.webhookAlerts, latency)
		t.alertEvents += a.Accepted
		t.newAlertEvents += a.Accepted - a.Duplicates
	}
	t.rejected += len(a.Rejected)
	if !slices.Equal(a.Events, r.ids) || a.Accepted != len(r.ids) {
		t.mismatch("%s answered events %v, want %v", r.path, a.Events, r.ids)
	}
	switch {
	case r.repeat:
		t.repeatWant += len(r.ids)
		t.repeatGot += a.Duplicates
	default:
		t.freshDups += a.Duplicates
	}
	if t.firstAck.IsZero() {
		t.firstAck = at
	}
	for _, id := range a.Events {
		if _, ok := t.acked[id]; !ok {
			t.acked[id] = ack{at: at, deploy: r.kind == kindDeploy}
			if fresh == "" && r.kind == kindAlerts {
				fresh = id
			}
		}
	}
	if r.kind == kindAlerts && !r.repeat && len(r.alerts) == len(a.Events) {
		rec := t.recent[r.service]
		for i, al := range r.alerts {
			rec = append(rec, sentAlert{alert: al, id: a.Events[i], at: at})
		}
		if len(rec) > maxRecent {
			rec = append(rec[:0:0], rec[len(rec)-maxRecent:]...)
		}
		t.recent[r.service] = rec
	}
	return fresh
}

func (t *tracker) mismatch(format string, args ...any) {
	t.mismatchN++
	if len(t.mismatches) < maxExamples {
		t.mismatches = append(t.mismatches, fmt.Sprintf(format, args...))
	}
}

// loader drives one run.
type loader struct {
	o      options
	client *http.Client
	base   string
	tr     *tracker
	probes *prober // nil: no probes
}

func newLoader(o options) (*loader, error) {
	u, err := url.Parse(strings.TrimRight(o.server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("--server %q: want a URL like http://127.0.0.1:9097", o.server)}
	}
	tp := http.DefaultTransport.(*http.Transport).Clone()
	tp.MaxIdleConns = o.connections + 2
	tp.MaxIdleConnsPerHost = o.connections + 2 // the poller and the readiness check too
	return &loader{o: o, client: &http.Client{Transport: tp}, base: u.String(), tr: newTracker()}, nil
}

func (l *loader) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if l.o.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.o.token)
	}
	req.Header.Set("User-Agent", "hindsight-load")
	res, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	return res.StatusCode, data, nil
}

// waitReady waits for /readyz, so that a run does not start by
// counting the errors of a server still starting.
func (l *loader) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		status, body, err := l.do(ctx, "GET", "/readyz", nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("hindsight at %s is not reachable: %w", l.base, err)
			}
			return fmt.Errorf("hindsight at %s is not ready: /readyz = %d %.200s", l.base, status, body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// run drives the load until the duration or the event count is reached
// (or stop is closed), then waits up to the settle time for every
// acknowledged alert event to be on exactly one timeline entry.
func (l *loader) run(ctx context.Context, stop <-chan struct{}) (*Report, error) {
	if err := l.waitReady(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	var rss *rssSampler
	if l.o.pid > 0 {
		rss = startRSS(l.o.pid, 200*time.Millisecond)
	}
	pollCtx, stopPolling := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	settled := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		l.poll(pollCtx, loadDone, settled)
	}()
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if l.o.progress != nil {
		progressWG.Go(func() { l.reportProgress(progressDone) })
	}

	if l.o.probeRate > 0 {
		l.probes = startProber(ctx, l)
	}
	start := time.Now()
	l.drive(ctx, stop, start)
	loadEnd := time.Now()
	close(loadDone)

	settleTimer := time.NewTimer(l.o.settle)
	isSettled := false
	select {
	case <-settled:
		isSettled = true
	case <-settleTimer.C:
	case <-ctx.Done():
	}
	settleTimer.Stop()
	settleEnd := time.Now()
	stopPolling()
	<-polled
	l.probes.stop()
	if !isSettled && ctx.Err() == nil {
		// One last complete listing, begun after everything was
		// acknowledged, is what the exactly-once check reads.
		began := time.Now()
		if counts, err := l.listAll(ctx); err != nil {
			l.tr.pollFailed(err)
		} else {
			l.tr.polled(counts, time.Since(began))
		}
	}
	close(progressDone)
	progressWG.Wait()
	var rssRep RSS
	if rss != nil {
		rssRep = rss.stop()
	} else {
		rssRep.Note = "not measured: pass --pid or --pid-file of the server"
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep := l.report(start, loadEnd, settleEnd, isSettled)
	rep.RSS = rssRep
	return rep, nil
}

// drive generates and sends requests over l.o.connections workers until
// the duration or the event count is reached, or stop is closed; requests
// in flight then get their answers.
func (l *loader) drive(ctx context.Context, stop <-chan struct{}, start time.Time) {
	loadCtx, cancel := context.WithCancel(ctx)
	if l.o.duration > 0 {
		loadCtx, cancel = context.WithDeadline(ctx, start.Add(l.o.duration))
	}
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-loadCtx.Done():
		}
	}()
	g := newGenerator(l.o.gen, time.Now, l.tr)
	reqs := make(chan request)
	var wg sync.WaitGroup
	for range l.o.connections {
		wg.Go(func() {
			for r := range reqs {
				l.send(ctx, r)
			}
		})
	}
	defer func() {
		close(reqs)
		wg.Wait()
	}()
	paced := 0
	for {
		if loadCtx.Err() != nil || (l.o.events > 0 && g.freshEvents >= l.o.events) {
			// What is held back for late delivery still goes.
			g.finish()
		}
		r, ok := g.next()
		if !ok {
			return
		}
		if l.o.rate > 0 && r.kind == kindAlerts && !g.finished {
			at := start.Add(time.Duration(float64(paced) / l.o.rate * float64(time.Second)))
			paced++
			if d := time.Until(at); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-loadCtx.Done():
				}
				t.Stop()
			}
		}
		select {
		case reqs <- r:
		case <-ctx.Done():
			return
		}
	}
}

func (l *loader) send(ctx context.Context, r request) {
	l.tr.sent(r)
	began := time.Now()
	status, body, err := l.do(ctx, "POST", r.path, r.body)
	at := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return // aborted: not the server's failure
		}
		status = 0
	}
	if id := l.tr.answered(r, status, body, at.Sub(began), at); id != "" {
		l.probes.offer(id, at)
	}
}

// statuses are the incident lists the poller reads: the default list
// (open and resolved) leaves out incidents held back by open_after.
var statuses = []string{"", "pending", "suppressed"}

// incidentPage is what the poller reads of GET /api/v1/incidents.
type incidentPage struct {
	Incidents []struct {
		ID       string `json:"id"`
		Timeline []struct {
			ID string `json:"id"`
		} `json:"timeline"`
		SuspectedChanges []struct {
			EventID string `json:"event_id"`
		} `json:"suspected_changes"`
	} `json:"incidents"`
	NextCursor string `json:"next_cursor"`
}

// poll lists every incident every poll interval (never two listings at
// once), records when each event ID first showed on a timeline, and
// closes settled once a listing begun after the load ended has every
// acknowledged alert event on exactly one entry.
func (l *loader) poll(ctx context.Context, loadDone <-chan struct{}, settled chan<- struct{}) {
	// The first listing waits an interval: at the start it would only
	// read what the server held before the run.
	select {
	case <-ctx.Done():
		return
	case <-time.After(l.o.pollInterval):
	}
	for ctx.Err() == nil {
		began := time.Now()
		afterLoad := isClosed(loadDone)
		counts, err := l.listAll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil && l.tr.polled(counts, time.Since(began)) && afterLoad {
			close(settled)
			return
		}
		if err != nil {
			l.tr.pollFailed(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(began.Add(l.o.pollInterval))):
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// listAll reads every page of every incident list and counts timeline
// entries by event ID. It marks IDs seen as each page arrives.
func (l *loader) listAll(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	for _, st := range statuses {
		cursor := ""
		for {
			q := url.Values{"limit": {"500"}}
			if st != "" {
				q.Set("status", st)
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			status, body, err := l.do(ctx, "GET", "/api/v1/incidents?"+q.Encode(), nil)
			if err != nil {
				return nil, err
			}
			if status != http.StatusOK {
				return nil, fmt.Errorf("GET /api/v1/incidents?%s = %d %.200s", q.Encode(), status, body)
			}
			var p incidentPage
			if err := json.Unmarshal(body, &p); err != nil {
				return nil, fmt.Errorf("GET /api/v1/incidents: %w", err)
			}
			l.tr.page(p, time.Now(), counts)
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
	}
	return counts, nil
}

func (t *tracker) page(p incidentPage, at time.Time, counts map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, inc := range p.Incidents {
		for _, e := range inc.Timeline {
			counts[e.ID]++
			if _, ok := t.seen[e.ID]; !ok {
				t.seen[e.ID] = at
			}
		}
		for _, s := range inc.SuspectedChanges {
			t.suspected[s.EventID] = true
			if _, ok := t.seen[s.EventID]; !ok {
				t.seen[s.EventID] = at
			}
		}
	}
}

// polled keeps a complete listing's counts and reports whether every
// acknowledged alert event is on exactly one entry.
func (t *tracker) polled(counts map[string]int, took time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts = counts
	t.pollDur = append(t.pollDur, took)
	for id, a := range t.acked {
		if !a.deploy && counts[id] != 1 {
			return false
		}
	}
	return true
}

func (t *tracker) pollFailed(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pollErrs++
	t.lastErr = err.Error()
}

func (l *loader) reportProgress(done <-chan struct{}) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		t := l.tr
		t.mu.Lock()
		var ok, errs, alerts, visible int
		for s, n := range t.answers {
			if strings.HasPrefix(s, "2") {
				ok += n
			} else {
				errs += n
			}
		}
		for id, a := range t.acked {
			if !a.deploy {
				alerts++
				if _, ok := t.seen[id]; ok {
					visible++
				}
			}
		}
		t.mu.Unlock()
		el := time.Since(start)
		fmt.Fprintf(l.o.progress, "%5.0fs  %d answers 2xx (%.0f/s), %d errors, %d of %d acknowledged alert events seen on a timeline\n",
			el.Seconds(), ok, float64(ok)/el.Seconds(), errs, visible, alerts)
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
