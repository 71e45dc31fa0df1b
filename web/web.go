package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/boltstore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures the UI.
type Options struct {
	// Incidents is what the pages read, as the JSON API does.
	Incidents api.Incidents
	// Drafts renders the postmortem beside the editor; nil leaves the
	// preview out (a process without the draft role).
	Drafts api.Renderer
	// Authorize checks a request's credentials, as the API's does; nil
	// allows everything. Challenge sets the WWW-Authenticate header of a
	// 401: with basic auth the browser asks for it once and then sends it
	// with the page's own requests too.
	Authorize func(*http.Request) bool
	Challenge func(http.Header)
	// Watch follows the correlator's lifecycle notices: it calls fn for
	// each until stop is called. fn does not block. Nil serves no
	// /events, and the pages stay as loaded.
	Watch func(ctx context.Context, fn func(hindsight.Notice)) (stop func(), err error)
	// Heartbeat is how often an idle event stream gets a comment, so that
	// proxies keep it open; default 15s.
	Heartbeat time.Duration
	// ClientBuffer is how many notices a slow event stream may fall
	// behind before it is dropped (the browser reconnects); default 64.
	ClientBuffer int
	Now          func() time.Time
	Logger       *slog.Logger
}

// Routes the UI serves.
const (
	RouteIncidents         = "GET /{$}"
	RouteIncident          = "GET /incidents/{id}"
	RouteEdit              = "GET /incidents/{id}/edit"
	RouteIncidentsFragment = "GET /fragments/incidents"
	RouteIncidentFragment  = "GET /fragments/incidents/{id}"
	RouteStatic            = "GET /static/"
	RouteEvents            = "GET /events"
)

// pageSize is how many incidents the incidents page shows at least, when
// there are that many; maxFetches bounds the store pages read to fill it.
const (
	pageSize   = 50
	maxFetches = 10
)

// Register adds the UI's routes to mux.
func Register(mux *http.ServeMux, o Options) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.ClientBuffer <= 0 {
		o.ClientBuffer = 64
	}
	u := &ui{o: o, events: newBroker(o)}
	mux.Handle(RouteIncidents, u.page(u.incidents))
	mux.Handle(RouteIncidentsFragment, u.page(u.incidentRows))
	mux.Handle(RouteIncident, u.page(u.incident))
	mux.Handle(RouteEdit, u.page(u.edit))
	mux.Handle(RouteIncidentFragment, u.page(u.incidentLive))
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle(RouteStatic, secured(http.StripPrefix("/static/", http.FileServerFS(static))))
	if o.Watch != nil {
		mux.Handle(RouteEvents, u.auth(u.events.ServeHTTP))
	}
}

type ui struct {
	o      Options
	events *broker
}

// contentSecurityPolicy allows the page's own stylesheet, script and
// requests, and nothing else: no inline script, no other origin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// secured sets the headers every UI response carries.
func secured(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func (u *ui) auth(h http.HandlerFunc) http.Handler {
	return secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.o.Authorize != nil && !u.o.Authorize(r) {
			if u.o.Challenge != nil {
				u.o.Challenge(w.Header())
			}
			http.Error(w, "missing or wrong credentials: Hindsight's pages take the API's credentials", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}))
}

// page serves what render returns: a template and its data, or an error
// page.
func (u *ui) page(render func(*http.Request) (string, any, error)) http.Handler {
	return u.auth(func(w http.ResponseWriter, r *http.Request) {
		name, data, err := render(r)
		var redirect *redirectError
		switch {
		case errors.As(err, &redirect):
			http.Redirect(w, r, redirect.to, http.StatusSeeOther)
			return
		case err != nil:
			u.fail(w, r, err)
			return
		}
		var buf bytes.Buffer
		if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
			u.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	})
}

// redirectError sends the browser elsewhere: to the incident a merged
// one's ID now names.
type redirectError struct{ to string }

func (e *redirectError) Error() string { return "moved to " + e.to }

// userError is a request that cannot be served as asked, with a message
// for the human and a status.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "reading the incidents failed; see Hindsight's log"
	var ue *userError
	if errors.As(err, &ue) {
		status, msg = ue.status, ue.msg
	} else {
		u.o.Logger.Error("render page", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = templates.ExecuteTemplate(w, "error.html", errorPage{Status: status, StatusText: http.StatusText(status), Message: msg})
}

type errorPage struct {
	Status     int
	StatusText string
	Message    string
}

// lookup reads the incident of the path. A merged incident's old ID
// redirects to the same view (prefix, ID, suffix) of the incident it
// merged into.
func (u *ui) lookup(r *http.Request, prefix, suffix string) (*hindsight.Incident, error) {
	id := r.PathValue("id")
	inc, err := u.o.Incidents.Incident(r.Context(), id)
	if errors.Is(err, hindsight.ErrNotFound) {
		return nil, &userError{http.StatusNotFound, "no incident " + strconv.Quote(id)}
	}
	if err != nil {
		return nil, err
	}
	if inc.ID != id {
		to := prefix + url.PathEscape(inc.ID) + suffix
		if r.URL.RawQuery != "" {
			to += "?" + r.URL.RawQuery
		}
		return nil, &redirectError{to}
	}
	return inc, nil
}

func (u *ui) incident(r *http.Request) (string, any, error) {
	inc, err := u.lookup(r, "/incidents/", "")
	if err != nil {
		return "", nil, err
	}
	return "incident.html", u.incidentView(inc, false), nil
}

func (u *ui) edit(r *http.Request) (string, any, error) {
	inc, err := u.lookup(r, "/incidents/", "/edit")
	if err != nil {
		return "", nil, err
	}
	v := u.incidentView(inc, true)
	if err := u.renderDraft(v); err != nil {
		return "", nil, err
	}
	return "edit.html", v, nil
}

// incidentLive is the part of an incident page that live updates replace:
// the facts, the picture and the timeline; with ?view=edit, the editor's
// timeline controls and draft preview.
func (u *ui) incidentLive(r *http.Request) (string, any, error) {
	inc, err := u.lookup(r, "/fragments/incidents/", "")
	if err != nil {
		return "", nil, err
	}
	v := u.incidentView(inc, r.URL.Query().Get("view") == "edit")
	if v.Editing {
		if err := u.renderDraft(v); err != nil {
			return "", nil, err
		}
		return "edit-live", v, nil
	}
	return "incident-live", v, nil
}

func (u *ui) renderDraft(v *incidentView) error {
	if u.o.Drafts == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := u.o.Drafts.Render(&buf, v.Incident, v.Incident.Postmortem.Fields, v.Now); err != nil {
		return err
	}
	v.Draft, v.HasDraft = buf.String(), true
	return nil
}

func (u *ui) incidents(r *http.Request) (string, any, error) {
	v, err := u.list(r)
	return "incidents.html", v, err
}

func (u *ui) incidentRows(r *http.Request) (string, any, error) {
	v, err := u.list(r)
	return "incident-rows", v, err
}

// list reads the incidents of the page's filters. The store filters by
// service and status; severity and draft state filter what it returns, so
// list reads further store pages until it has a page's worth of rows (or
// has read maxFetches pages), and never stops inside a store page, so
// that the next cursor loses nothing.
func (u *ui) list(r *http.Request) (*listView, error) {
	f := filterFrom(r.URL.Query())
	v := &listView{Filter: f, Now: u.o.Now().UTC()}
	o := boltstore.ListOptions{Limit: pageSize, Cursor: f.Cursor, Service: f.Service, Status: f.Status}
	for fetches := 0; fetches < maxFetches; fetches++ {
		incs, next, err := u.o.Incidents.List(r.Context(), o)
		if errors.Is(err, boltstore.ErrBadCursor) {
			return nil, &userError{http.StatusBadRequest, err.Error()}
		}
		if err != nil {
			return nil, err
		}
		for i := range incs {
			if f.keeps(&incs[i]) {
				v.Rows = append(v.Rows, newRow(&incs[i], v.Now))
			}
		}
		v.Next = next
		if next == "" || len(v.Rows) >= pageSize {
			break
		}
		o.Cursor = next
	}
	return v, nil
}
