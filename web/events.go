package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// broker serves GET /events: it watches the notices (once, from the
// first stream on) and fans each out to the open streams, each with a
// bounded buffer. A stream that falls a buffer behind is dropped rather
// than slowing the others or the correlator: its browser reconnects and
// re-reads the page.
type broker struct {
	o Options

	watchMu   sync.Mutex // held while starting or stopping the watch, never with mu
	stopWatch func()     // nil: not watching

	mu        sync.Mutex
	clients   map[chan hindsight.Notice]struct{}
	servers   map[*http.Server]bool
	quit      chan struct{} // closed when a server the streams run on shuts down
	closeOnce sync.Once
}

func newBroker(o Options) *broker {
	return &broker{o: o, clients: map[chan hindsight.Notice]struct{}{}, servers: map[*http.Server]bool{}, quit: make(chan struct{})}
}

// retryMillis is how long a browser waits before it reconnects.
const retryMillis = 2000

// writeWait bounds each write to a stream: one that cannot take a
// heartbeat in that time is gone.
const writeWait = 10 * time.Second

func (b *broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := b.watch(); err != nil {
		b.o.Logger.Warn("watch lifecycle notices", "err", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "live updates are not available now: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	b.stopOnShutdown(r)
	ch, ok := b.add()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer b.remove(ch)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no buffering in nginx
	w.WriteHeader(http.StatusOK)
	send := func(format string, args ...any) error {
		// The server's WriteTimeout would end the stream: each write gets
		// its own deadline instead.
		if err := rc.SetWriteDeadline(time.Now().Add(writeWait)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send("retry: %d\n: live notices of Hindsight's incidents\n\n", retryMillis) != nil {
		return
	}
	heartbeat := time.NewTicker(b.o.Heartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case n, open := <-ch:
			if !open {
				return // dropped: too slow
			}
			data, _ := json.Marshal(n)
			err = send("event: notice\ndata: %s\n\n", data)
		case <-heartbeat.C:
			err = send(": heartbeat\n\n")
		case <-r.Context().Done():
			return
		case <-b.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// watch starts following the notices, once; a failure is retried by the
// next stream.
func (b *broker) watch() error {
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	if b.stopWatch != nil {
		return nil
	}
	select {
	case <-b.quit:
		return errors.New("shutting down")
	default:
	}
	stop, err := b.o.Watch(context.Background(), b.dispatch)
	if err != nil {
		return err
	}
	b.stopWatch = stop
	return nil
}

// shutdown ends every stream and stops watching.
func (b *broker) shutdown() {
	b.closeOnce.Do(func() { close(b.quit) })
	b.watchMu.Lock()
	defer b.watchMu.Unlock()
	if b.stopWatch != nil {
		b.stopWatch()
	}
}

// stopOnShutdown ends every stream, and the watch, when the server shuts
// down, which otherwise waits for the streams (they never go idle) until
// its deadline.
func (b *broker) stopOnShutdown(r *http.Request) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.servers[srv] {
		b.servers[srv] = true
		srv.RegisterOnShutdown(b.shutdown)
	}
}

func (b *broker) add() (chan hindsight.Notice, bool) {
	select {
	case <-b.quit:
		return nil, false
	default:
	}
	ch := make(chan hindsight.Notice, b.o.ClientBuffer)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clients[ch] = struct{}{}
	return ch, true
}

func (b *broker) remove(ch chan hindsight.Notice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.clients[ch]; ok {
		delete(b.clients, ch)
		close(ch)
	}
}

// dispatch hands n to every stream without blocking; a stream whose
// buffer is full is closed and forgotten.
func (b *broker) dispatch(n hindsight.Notice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.clients {
		select {
		case ch <- n:
		default:
			delete(b.clients, ch)
			close(ch)
			b.o.Logger.Info("dropped a slow live-update stream", "buffer", cap(ch))
		}
	}
}
