package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The prober times single events from their acknowledgement to their
// timeline: a few times a second it takes the first new alert event of a
// fresh notification just acknowledged and asks GET /api/v1/events/{id}
// every --probe-interval until an incident holds it. Unlike the listing,
// a probe costs the server two index lookups, so it measures the fold,
// not the measurement.

// probeWorkers bounds the probes in flight.
const probeWorkers = 8

type probe struct {
	id    string
	acked time.Time
}

type prober struct {
	l        *loader
	every    time.Duration // between samples
	interval time.Duration // between two asks of one probe
	limit    time.Duration // a probe gives up after this

	mu     sync.Mutex
	last   time.Time
	work   chan probe
	wg     sync.WaitGroup
	cancel context.CancelFunc // ends the probes still asking
}

func startProber(ctx context.Context, l *loader) *prober {
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{l: l, every: time.Duration(float64(time.Second) / l.o.probeRate), interval: l.o.probeInterval,
		limit: max(l.o.settle, 10*time.Second), work: make(chan probe, probeWorkers), cancel: cancel}
	for range probeWorkers {
		p.wg.Go(func() {
			for pr := range p.work {
				p.run(ctx, pr)
			}
		})
	}
	return p
}

// offer samples id, acknowledged at acked, if a sample is due and a worker
// is free; it never blocks the sender.
func (p *prober) offer(id string, acked time.Time) {
	if p == nil {
		return
	}
	p.mu.Lock()
	due := acked.Sub(p.last) >= p.every
	if due {
		p.last = acked
	}
	p.mu.Unlock()
	if !due {
		return
	}
	select {
	case p.work <- probe{id, acked}:
	default:
		p.l.tr.probeDropped()
	}
}

// stop ends the probes once the run is over: one still asking then
// counts neither as timed nor as unseen.
func (p *prober) stop() {
	if p == nil {
		return
	}
	close(p.work)
	p.cancel()
	p.wg.Wait()
}

func (p *prober) run(ctx context.Context, pr probe) {
	path := "/api/v1/events/" + url.PathEscape(pr.id)
	deadline := pr.acked.Add(p.limit)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		status, body, err := p.l.do(ctx, "GET", path, nil)
		at := time.Now()
		if err == nil && status == http.StatusOK {
			// On a timeline: of an incident, or of one held back by
			// open_after (pending), as the listing counts it.
			var place struct {
				Incident string `json:"incident"`
			}
			if json.Unmarshal(body, &place) == nil && place.Incident != "" {
				p.l.tr.probed(pr.id, at.Sub(pr.acked))
				return
			}
		}
		if err == nil && status != http.StatusOK && status != http.StatusNotFound {
			p.l.tr.probeFailed(pr.id, status, body)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(p.interval):
		}
	}
	if ctx.Err() == nil {
		p.l.tr.probeUnseen(pr.id)
	}
}

func (t *tracker) probed(id string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probes = append(t.probes, max(0, d))
}

func (t *tracker) probeDropped() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probesDropped++
}

func (t *tracker) probeUnseen(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probesUnseen = append(t.probesUnseen, id)
}

func (t *tracker) probeFailed(id string, status int, body []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probesUnseen = append(t.probesUnseen, id)
	t.lastErr = "GET /api/v1/events/" + id + ": " + http.StatusText(status) + ": " + string(body[:min(len(body), 200)])
}
