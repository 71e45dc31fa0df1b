package web_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/draft"
	"github.com/hindsight-sre/hindsight/web"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// hub hands the correlator's notices to the UI's watchers, in process,
// as NATS does in the app.
type hub struct {
	mu  sync.Mutex
	fns map[*func(hindsight.Notice)]bool
}

func (h *hub) publish(_ context.Context, ns []hindsight.Notice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range ns {
		for fn := range h.fns {
			(*fn)(n)
		}
	}
}

func (h *hub) watch(_ context.Context, fn func(hindsight.Notice)) (func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fns == nil {
		h.fns = map[*func(hindsight.Notice)]bool{}
	}
	h.fns[&fn] = true
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.fns, &fn)
	}, nil
}

// fixture is the UI over a real bbolt store that a real correlator folds
// events into.
type fixture struct {
	url   string
	c     *correlate.Correlator
	store *boltstore.Store
	seq   uint64
}

func newFixture(t *testing.T, mod ...func(*web.Options)) *fixture {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := correlate.New(correlate.DefaultConfig(), s, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &hub{}
	c.Notify(h.publish)
	r, err := draft.New(draft.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := web.Options{Incidents: api.Enriched{Store: s, Config: correlate.DefaultConfig()}, Drafts: r, Watch: h.watch,
		Now: func() time.Time { return at(90) }}
	for _, m := range mod {
		m(&o)
	}
	mux := http.NewServeMux()
	web.Register(mux, o)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{url: srv.URL, c: c, store: s}
}

func (f *fixture) apply(t *testing.T, events ...hindsight.Event) {
	t.Helper()
	f.seq += uint64(len(events))
	if err := f.c.Apply(context.Background(), events, f.seq); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) only(t *testing.T) *hindsight.Incident {
	t.Helper()
	incs, _, err := f.store.List(context.Background(), boltstore.ListOptions{})
	if err != nil || len(incs) != 1 {
		t.Fatalf("incidents = %d, %v; want 1", len(incs), err)
	}
	return &incs[0]
}

func firing(fp, service, severity, summary string, start int) hindsight.Event {
	l := map[string]string{"alertname": "HighLatency", "service": service, "severity": severity, "instance": "i-" + fp}
	return hindsight.Event{
		ID: hindsight.AlertEventID(fp, at(start), "firing"), Kind: hindsight.KindAlertFiring, Source: hindsight.SourceAlertmanager,
		Time: at(start), ReceivedAt: at(start + 2), Service: service, Labels: l, Summary: summary,
		Alert: &hindsight.AlertDetails{Name: "HighLatency", Fingerprint: fp, StartsAt: at(start),
			Annotations:  map[string]string{"summary": summary, "runbook_url": "https://runbooks.example.com/latency"},
			GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=up"},
	}
}

func resolved(fp, service, severity string, start, end int) hindsight.Event {
	e := firing(fp, service, severity, "resolved", start)
	e.ID, e.Kind, e.Time, e.ReceivedAt = hindsight.AlertEventID(fp, at(start), "resolved"), hindsight.KindAlertResolved, at(end), at(end)
	e.Alert.EndsAt = at(end)
	return e
}

func deploy(service, version, url string, when int) hindsight.Event {
	d := hindsight.DeployDetails{Version: version, Status: "succeeded", URL: url, Commit: "9f2c1ab"}
	return hindsight.Event{
		ID: hindsight.DeployEventID(d, service, at(when)), Kind: hindsight.KindDeploySucceeded, Source: hindsight.SourceDeploy,
		Time: at(when), ReceivedAt: at(when), Service: service, Summary: "deploy " + service + " " + version, Deploy: &d,
	}
}

type page struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url string) page { t.Helper(); return fetch(t, "GET", url, nil) }

// fetch sends body (JSON, if any) and reads the answer.
func fetch(t *testing.T, method, url string, body []byte) page {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{res.StatusCode, res.Header, string(b)}
}

// Alert and deploy text is anyone's who can send a webhook: every page
// escapes it, and links other than http(s) are left out.
func TestPagesEscapeUntrustedText(t *testing.T) {
	f := newFixture(t)
	evil := firing("f1", "checkout", "critical", `<script>alert("pwned")</script> p99 high`, 10)
	evil.Alert.GeneratorURL = "javascript:alert(1)"
	f.apply(t, deploy("checkout", `v2<img src=x onerror=alert(1)>`, "JavaScript:alert(2)", 2), evil)
	inc := f.only(t)
	for _, path := range []string{"/", "/fragments/incidents", "/incidents/" + inc.ID, "/incidents/" + inc.ID + "/edit",
		"/fragments/incidents/" + inc.ID, "/fragments/incidents/" + inc.ID + "?view=edit"} {
		t.Run(path, func(t *testing.T) {
			p := get(t, f.url+path)
			if p.status != http.StatusOK {
				t.Fatalf("status = %d, want 200: %s", p.status, p.body)
			}
			// (The draft shows the deploy's URL as text: escaped, not a link.)
			for _, bad := range []string{"<script>alert", "<img src=x", `="javascript:`, `="#zgotmplz`} {
				if strings.Contains(strings.ToLower(p.body), strings.ToLower(bad)) {
					t.Errorf("page holds %q unescaped", bad)
				}
			}
			if path != "/" && path != "/fragments/incidents" && !strings.Contains(p.body, "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;") {
				t.Errorf("page lacks the escaped summary:\n%s", p.body)
			}
			if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy = %q, want default-src 'self' and no unsafe-inline", csp)
			}
			if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || strings.Contains(p.body, " onclick=") {
				t.Error("page has inline script or style, which the policy refuses")
			}
		})
	}
	p := get(t, f.url+"/incidents/"+inc.ID)
	for _, want := range []string{`href="https://runbooks.example.com/latency"`, `class="bar firing"`, "mark deploy suspect", "top suspect, not confirmed"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("incident page lacks %q", want)
		}
	}
}

// An entry hidden from the draft stays on the timeline, struck, with a
// button to show it again.
func TestHiddenEntryStaysOnTheTimeline(t *testing.T) {
	f := newFixture(t)
	fire := firing("a", "checkout", "critical", "slow", 0)
	f.apply(t, fire, firing("b", "checkout", "warning", "noisy neighbour", 1))
	inc := f.only(t)
	noisy := inc.Timeline[1].ID
	f.apply(t, hindsight.Event{ID: "h-1", Kind: hindsight.KindEntryHidden, Source: hindsight.SourceHuman, Time: at(5), ReceivedAt: at(5),
		Service: "checkout", Summary: "hidden", Human: &hindsight.HumanDetails{IncidentID: inc.ID, Key: inc.Key, Anchor: inc.Anchor, Entry: noisy}})
	p := get(t, f.url+"/incidents/"+inc.ID+"/edit")
	for _, want := range []string{`hidden" data-entry="` + noisy + `"`, `data-entry="` + noisy + `" data-hidden="false">show in draft`,
		`data-entry="` + fire.ID + `" data-hidden="true">hide from draft`, "hidden from the draft"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("editor lacks %q", want)
		}
	}
	if strings.Contains(p.body[strings.Index(p.body, `<pre class="draft">`):], "noisy neighbour") {
		t.Error("the draft still shows the hidden entry")
	}
}

func TestIncidentsPageFilters(t *testing.T) {
	f := newFixture(t)
	f.apply(t, firing("a", "checkout", "critical", "checkout slow", 0), resolved("a", "checkout", "critical", 0, 20),
		firing("b", "payments", "warning", "payments errors", 60),
		firing("c", "search", "critical", "search down", 70))
	tests := []struct {
		query      string
		want, omit []string
	}{
		{"", []string{"checkout", "payments", "search"}, nil},
		{"?service=payments", []string{"payments"}, []string{">checkout<", ">search<"}},
		{"?status=resolved", []string{"checkout"}, []string{">payments<", ">search<"}},
		{"?severity=critical", []string{"checkout", "search"}, []string{">payments<"}},
		{"?severity=critical&status=open", []string{"search"}, []string{">checkout<", ">payments<"}},
		{"?state=published", []string{"No incidents match these filters"}, []string{">checkout<"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			for _, base := range []string{"/", "/fragments/incidents"} {
				p := get(t, f.url+base+tc.query)
				if p.status != 200 {
					t.Fatalf("%s: status %d", base, p.status)
				}
				for _, w := range tc.want {
					if !strings.Contains(p.body, w) {
						t.Errorf("%s%s lacks %q", base, tc.query, w)
					}
				}
				for _, o := range tc.omit {
					if strings.Contains(p.body, o) {
						t.Errorf("%s%s has %q", base, tc.query, o)
					}
				}
			}
		})
	}
	// The resolved one lasted 20m; the open ones run until now (at(90)).
	p := get(t, f.url+"/?status=resolved")
	if !strings.Contains(p.body, ">20m<") {
		t.Errorf("resolved incident's duration is not 20m:\n%s", p.body)
	}
}

func TestIncidentsPagePages(t *testing.T) {
	f := newFixture(t)
	var evs []hindsight.Event
	for i := range 60 {
		fp := string(rune('a'+i%26)) + string(rune('a'+i/26))
		evs = append(evs, firing(fp, "svc-"+fp, "warning", "x", i*30))
	}
	f.apply(t, evs...)
	p := get(t, f.url+"/")
	if n := strings.Count(p.body, "<tr data-id="); n != 50 {
		t.Fatalf("first page has %d rows, want 50", n)
	}
	i := strings.Index(p.body, `class="next" href="`)
	if i < 0 {
		t.Fatal("no link to the next page")
	}
	next := p.body[i+len(`class="next" href="`):]
	next = strings.ReplaceAll(next[:strings.IndexByte(next, '"')], "&amp;", "&")
	p = get(t, f.url+next)
	if n := strings.Count(p.body, "<tr data-id="); n != 10 {
		t.Fatalf("second page (%s) has %d rows, want 10", next, n)
	}
	if p := get(t, f.url+"/?cursor=nonsense"); p.status != http.StatusBadRequest {
		t.Errorf("bad cursor: status %d, want 400", p.status)
	}
}

func TestUnknownAndMergedIncidents(t *testing.T) {
	f := newFixture(t)
	if p := get(t, f.url+"/incidents/inc-nope"); p.status != http.StatusNotFound || !strings.Contains(p.body, "no incident") {
		t.Errorf("unknown incident: %d %s", p.status, p.body)
	}
	// Two incidents, then an alert that bridges them: the later one's ID
	// redirects to the survivor.
	f.apply(t, firing("a", "checkout", "critical", "a", 0), resolved("a", "checkout", "critical", 0, 5))
	f.apply(t, firing("b", "checkout", "critical", "b", 40), resolved("b", "checkout", "critical", 40, 45))
	incs, _, _ := f.store.List(context.Background(), boltstore.ListOptions{})
	if len(incs) != 2 {
		t.Fatalf("%d incidents, want 2", len(incs))
	}
	later := incs[0].ID
	f.apply(t, firing("c", "checkout", "critical", "bridge", 3), resolved("c", "checkout", "critical", 3, 42))
	survivor := f.only(t).ID
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{
		"/incidents/" + later + "/edit":                "/incidents/" + survivor + "/edit",
		"/fragments/incidents/" + later + "?view=edit": "/fragments/incidents/" + survivor + "?view=edit",
	} {
		res, err := client.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
			t.Errorf("GET %s = %d to %q, want 303 to %q", path, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
}

func TestPagesAskForTheAPICredentials(t *testing.T) {
	f := newFixture(t, func(o *web.Options) {
		o.Authorize = func(r *http.Request) bool { u, p, ok := r.BasicAuth(); return ok && u == "sre" && p == "pw" }
		o.Challenge = func(h http.Header) { h.Set("WWW-Authenticate", `Basic realm="hindsight"`) }
	})
	for _, path := range []string{"/", "/incidents/x", "/fragments/incidents", "/events"} {
		p := get(t, f.url+path)
		if p.status != http.StatusUnauthorized || p.header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without credentials = %d (challenge %q), want 401 with a challenge", path, p.status, p.header.Get("WWW-Authenticate"))
		}
	}
	req, _ := http.NewRequest("GET", f.url+"/", nil)
	req.SetBasicAuth("sre", "pw")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET / with credentials = %d, want 200", res.StatusCode)
	}
	for _, path := range []string{"/static/app.js", "/static/style.css"} {
		if p := get(t, f.url+path); p.status != 200 || p.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s = %d, want 200 with nosniff", path, p.status)
		}
	}
}

// stream is an open GET /events.
type stream struct {
	res   *http.Response
	lines chan string
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &stream{res: res, lines: make(chan string, 100)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s
}

// await reads lines until one has want.
func (s *stream) await(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within 10s", want)
		}
	}
}

func TestEventsStreamNotices(t *testing.T) {
	f := newFixture(t, func(o *web.Options) { o.Heartbeat = 50 * time.Millisecond })
	s := openStream(t, f.url)
	s.await(t, "retry: ")
	s.await(t, ": heartbeat")
	f.apply(t, firing("a", "checkout", "critical", "slow", 0))
	inc := f.only(t)
	s.await(t, "event: notice")
	s.await(t, `"incident":"`+inc.ID+`","key":"checkout","change":"opened"`)
	// A second stream gets what follows too.
	s2 := openStream(t, f.url)
	s2.await(t, "retry: ")
	f.apply(t, resolved("a", "checkout", "critical", 0, 10))
	s.await(t, `"change":"resolved"`)
	s2.await(t, `"change":"resolved"`)
}

// A server shutting down ends the event streams instead of waiting for
// them until its deadline.
func TestEventsStreamEndsAtShutdown(t *testing.T) {
	mux := http.NewServeMux()
	web.Register(mux, web.Options{Incidents: api.Enriched{}, Watch: (&hub{}).watch})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, WriteTimeout: 100 * time.Millisecond}
	go srv.Serve(ln)
	s := openStream(t, "http://"+ln.Addr().String())
	s.await(t, "retry: ")
	// The stream outlives the server's WriteTimeout.
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %s with a stream open", d)
	}
	for range s.lines {
	}
}
