// Package api serves the read side of Hindsight's HTTP surface: incidents
// as JSON and their postmortem drafts as Markdown. Writes (hooks, notes)
// are events and live in package ingest.
//
// # Caveats
//
// The handlers read the local bbolt state, so they run in a process with
// the correlate role.
package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
)

// Incidents is what the API reads incidents from.
type Incidents interface {
	Incident(ctx context.Context, id string) (*hindsight.Incident, error)
	List(ctx context.Context, o boltstore.ListOptions) ([]hindsight.Incident, string, error)
}

// EventPlaces says where an event went. Options.Incidents implementing
// it adds GET /api/v1/events/{id}.
type EventPlaces interface {
	EventPlace(ctx context.Context, id string) (boltstore.EventPlace, error)
}

// Renderer renders a postmortem draft.
type Renderer interface {
	Render(w io.Writer, inc *hindsight.Incident, human hindsight.PostmortemFields, asOf time.Time) error
}

// Options configures the API.
type Options struct {
	Incidents Incidents
	// Drafts renders postmortems; nil leaves the postmortem route out
	// (a process without the draft role).
	Drafts Renderer
	// Authorize checks a request's credentials; nil allows everything.
	// Challenge sets the WWW-Authenticate header of a 401.
	Authorize func(*http.Request) bool
	Challenge func(http.Header)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Register adds the API routes to mux.
func Register(mux *http.ServeMux, o Options) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &server{o}
	mux.HandleFunc(RouteOpenAPI, serveOpenAPI)
	mux.Handle("GET /api/v1/incidents", a.auth(a.list))
	mux.Handle("GET /api/v1/incidents/{id}", a.auth(a.get))
	mux.Handle("GET /api/v1/report", a.auth(a.report))
	if ev, ok := o.Incidents.(EventPlaces); ok {
		mux.Handle("GET /api/v1/events/{id}", a.auth(a.event(ev)))
	}
	if o.Drafts != nil {
		mux.Handle("GET /api/v1/incidents/{id}/postmortem.md", a.auth(a.postmortem))
	}
}

type server struct{ o Options }

func (a *server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Authorize != nil && !a.o.Authorize(r) {
			if a.o.Challenge != nil {
				a.o.Challenge(w.Header())
			}
			Error(w, http.StatusUnauthorized, "missing or wrong credentials for the API")
			return
		}
		h(w, r)
	})
}

// MaxPageSize bounds ?limit=.
const MaxPageSize = 500

func (a *server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := boltstore.ListOptions{Limit: 50, Cursor: q.Get("cursor"), Service: q.Get("service")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			Error(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(MaxPageSize))
			return
		}
		o.Limit = n
	}
	switch s := hindsight.Status(q.Get("status")); s {
	case "", hindsight.StatusOpen, hindsight.StatusResolved, hindsight.StatusPending, hindsight.StatusSuppressed:
		o.Status = s
	default:
		Error(w, http.StatusBadRequest, "status must be open, resolved, pending (held back by a rule's open_after) or suppressed (held back, then resolved)")
		return
	}
	incs, next, err := a.o.Incidents.List(r.Context(), o)
	if errors.Is(err, boltstore.ErrBadCursor) {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		a.internal(w, "list incidents", err)
		return
	}
	if incs == nil {
		incs = []hindsight.Incident{}
	}
	writeList(w, incs, next)
}

// incidentList is the answer of GET /api/v1/incidents.
type incidentList struct {
	Incidents  []hindsight.Incident `json:"incidents"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

// writeList writes what JSON(w, 200, incidentList{incs, next}) writes,
// byte for byte, an incident at a time: a page of a storm's incidents
// is tens of megabytes, and encoding it whole held it twice more in
// memory (compact, then indented) before the first byte left.
func writeList(w http.ResponseWriter, incs []hindsight.Incident, next string) {
	if len(incs) == 0 {
		JSON(w, http.StatusOK, incidentList{incs, next})
		return
	}
	writeJSONHeader(w, http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("{\n  \"incidents\": [\n")
	for i := range incs {
		b, err := json.MarshalIndent(&incs[i], "    ", "  ")
		if err != nil {
			return // as JSON does: the status is out, nothing more to say
		}
		bw.WriteString("    ")
		bw.Write(b)
		if i < len(incs)-1 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
	}
	bw.WriteString("  ]")
	if next != "" {
		n, _ := json.Marshal(next)
		bw.WriteString(",\n  \"next_cursor\": ")
		bw.Write(n)
	}
	bw.WriteString("\n}\n")
	_ = bw.Flush()
}

func (a *server) lookup(w http.ResponseWriter, r *http.Request) *hindsight.Incident {
	id := r.PathValue("id")
	inc, err := a.o.Incidents.Incident(r.Context(), id)
	if errors.Is(err, hindsight.ErrNotFound) {
		Error(w, http.StatusNotFound, "no incident "+strconv.Quote(id))
		return nil
	}
	if err != nil {
		a.internal(w, "read incident", err)
		return nil
	}
	return inc
}

func (a *server) get(w http.ResponseWriter, r *http.Request) {
	if inc := a.lookup(w, r); inc != nil {
		if inc.ID != r.PathValue("id") {
			// A merged incident: say where it went, serve the survivor.
			w.Header().Set("Content-Location", "/api/v1/incidents/"+inc.ID)
		}
		JSON(w, http.StatusOK, inc)
	}
}

// event answers where an event went: 404 until the commit that folds it,
// then its key and the incident that holds it. Load tests poll it to
// time an event from its acknowledgement to its timeline.
func (a *server) event(ev EventPlaces) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := ev.EventPlace(r.Context(), r.PathValue("id"))
		if errors.Is(err, hindsight.ErrNotFound) {
			Error(w, http.StatusNotFound, "no event "+strconv.Quote(r.PathValue("id"))+" has been folded (yet): it was never received, or the correlator has not reached it")
			return
		}
		if err != nil {
			a.internal(w, "look up event", err)
			return
		}
		JSON(w, http.StatusOK, p)
	}
}

func (a *server) postmortem(w http.ResponseWriter, r *http.Request) {
	inc := a.lookup(w, r)
	if inc == nil {
		return
	}
	var buf bytes.Buffer
	if err := a.o.Drafts.Render(&buf, inc, inc.Postmortem.Fields, a.o.Now().UTC()); err != nil {
		a.internal(w, "render postmortem", err)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (a *server) internal(w http.ResponseWriter, what string, err error) {
	a.o.Logger.Error(what, "err", err)
	Error(w, http.StatusInternalServerError, what+" failed; see Hindsight's log")
}

// JSON writes v as a JSON response.
func JSON(w http.ResponseWriter, status int, v any) {
	writeJSONHeader(w, status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONHeader(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
}

// Error writes {"error": msg}.
func Error(w http.ResponseWriter, status int, msg string) {
	JSON(w, status, map[string]string{"error": msg})
}
