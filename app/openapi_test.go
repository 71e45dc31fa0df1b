package app_test

// The OpenAPI document (api/openapi.json, served at /api/v1/openapi.json)
// is kept true here, against the whole app on loopback:
//
//   - the routes the app serves under /api/ and /hooks/ (and /metrics,
//     /healthz, /readyz) are exactly the operations the document lists;
//   - every operation is exercised, with its success and its error
//     answers, and every answer is validated against the document: its
//     status must be documented, its Content-Type and body must match;
//   - every status the document lists for an operation is produced at
//     least once, except the few no request can provoke (oaUnreachable).
//
// The validator is github.com/getkin/kin-openapi (openapi3filter with the
// gorillamux router): the most used Go OpenAPI library, maintained, with
// OpenAPI 3.1 and JSON Schema 2020-12 support (type arrays for nullable
// fields, const), response validation that fails on an undocumented
// status (IncludeResponseStatus) and request validation through the same
// router. Its only new dependencies are small (gorilla/mux, jsonpointer,
// santhosh-tekuri/jsonschema), where libopenapi-validator brings a YAML
// and document-model stack several times larger.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/ingest"
	"github.com/hindsight-sre/hindsight/internal/natstest"
)

const (
	oaAMToken     = "am-token"
	oaDeployToken = "deploy-token"
	oaGitHubKey   = "gh-secret"
	oaUser        = "alice"
	oaPassword    = "alice-pw"
	oaMaxBody     = 16 << 10
	oaMaxAMBody   = 64 << 10
)

// oaSWKey is the Standard Webhooks key of auth.deploy.
var oaSWKey = []byte("0123456789abcdef0123456789abcdef")

// oaConfig configures credentials on every route group, small body limits
// (so 413 is cheap to provoke) and a rule that holds service batch back
// (so there is a pending incident).
var oaConfig = fmt.Sprintf(`
auth:
  alertmanager: {bearer_token: %s}
  deploy:
    bearer_token: %s
    standard_webhooks: {secret: whsec_%s}
  github: {secret: %s}
  api:
    basic_auth: {username: %s, password: %s}
limits:
  max_body_bytes: %d
  max_alertmanager_body_bytes: %d
correlation:
  rules:
    - name: held
      match: ['service="batch"']
      open_after: {for: 2h}
`, oaAMToken, oaDeployToken, base64.StdEncoding.EncodeToString(oaSWKey), oaGitHubKey, oaUser, oaPassword, oaMaxBody, oaMaxAMBody)

// oaUnreachable are the documented statuses that no request to a healthy
// Hindsight on loopback can provoke, and why. Everything else documented
// must be exercised.
var oaUnreachable = map[int]string{
	500: "Hindsight's own failure",
	202: "the correlator runs in the process and folds an act well within the 5 s wait",
	501: "the app's store reads incidents by start time",
	503: "the broker is away: TestOpenAPIBrokerAway",
}

func init() {
	openapi3filter.RegisterBodyDecoder("text/markdown", openapi3filter.PlainBodyDecoder)
}

// oaChecker sends requests to a running app and validates each answer
// against the document, recording which operations answered which
// statuses.
type oaChecker struct {
	doc    *openapi3.T
	router routers.Router
	base   string

	mu   sync.Mutex
	seen map[string]map[int]bool // "POST /hooks/deploy" → statuses
}

func newOAChecker(t *testing.T) *oaChecker {
	t.Helper()
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("load api/openapi.json: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("api/openapi.json is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &oaChecker{doc: doc, router: router, seen: map[string]map[int]bool{}}
}

// operations lists the document's operations as ServeMux patterns.
func (c *oaChecker) operations() []string {
	var ops []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

type oaReq struct {
	method, path string
	body         []byte
	header       map[string]string
	// noAuth leaves out the route group's credentials.
	noAuth bool
	// unchecked skips the validation of a request that succeeds: one
	// that Hindsight tolerates beyond what the document asks for.
	unchecked bool
	want      int
}

// do sends r with the credentials of its route group, checks its status,
// and validates the answer (and, for a 2xx, the request) against the
// document.
func (c *oaChecker) do(t *testing.T, r oaReq) resp {
	t.Helper()
	hdr := http.Header{}
	if r.body != nil {
		hdr.Set("Content-Type", "application/json")
	}
	if !r.noAuth {
		switch {
		case r.path == "/hooks/alertmanager":
			hdr.Set("Authorization", "Bearer "+oaAMToken)
		case r.path == "/hooks/deploy":
			hdr.Set("Authorization", "Bearer "+oaDeployToken)
		case r.path == "/hooks/github":
			mac := hmac.New(sha256.New, []byte(oaGitHubKey))
			mac.Write(r.body)
			hdr.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		case strings.HasPrefix(r.path, "/api/"):
			hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(oaUser+":"+oaPassword)))
		}
	}
	for k, v := range r.header {
		if v == "" {
			hdr.Del(k)
		} else {
			hdr.Set(k, v)
		}
	}
	req, err := http.NewRequest(r.method, c.base+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	got := resp{res.StatusCode, res.Header, data}
	what := fmt.Sprintf("%s %s", r.method, r.path)
	if got.status != r.want {
		t.Errorf("%s = %d %s; want %d", what, got.status, clipBody(data), r.want)
	}
	if e := errorText(data); (got.status == 404 && strings.HasPrefix(e, "no route for ")) || got.status == 405 {
		t.Errorf("%s: the app's mux does not serve it: %d %s", what, got.status, e)
		return got
	}

	// Validate against the document, with a request of its own (the one
	// sent has been read).
	vreq := httptest.NewRequest(r.method, c.base+r.path, bytes.NewReader(r.body))
	vreq.Header = hdr.Clone()
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		t.Errorf("%s is not in the document: %v", what, err)
		return got
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if got.status/100 == 2 && !r.unchecked {
		// What succeeded must be what the document says to send.
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s succeeded with a request the document refuses: %v\nbody: %s", what, err, clipBody(r.body))
		}
	}
	if len(data) > 0 && got.header.Get("Content-Type") == "" {
		t.Errorf("%s answered %d with a body and no Content-Type", what, got.status)
	}
	if err := c.validate(in, got); err != nil {
		t.Errorf("%s answered %d (%s), which the document does not describe: %v\nbody: %s",
			what, got.status, got.header.Get("Content-Type"), err, clipBody(data))
	}
	c.mu.Lock()
	op := route.Method + " " + route.Path
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][got.status] = true
	c.mu.Unlock()
	return got
}

// validate checks an answer to the request of in against the document.
func (c *oaChecker) validate(in *openapi3filter.RequestValidationInput, r resp) error {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: r.status, Header: r.header, Options: in.Options}
	out.SetBodyBytes(r.body)
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// checkStrict makes sure that the validator holds answers to the
// document: an incident as the app serves it passes, and each way of
// getting it wrong fails.
func (c *oaChecker) checkStrict(t *testing.T, id string, body []byte) {
	t.Helper()
	req := httptest.NewRequest("GET", c.base+"/api/v1/incidents/"+id, nil)
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}}
	answer := func(status int, ct string, mutate func(map[string]any)) resp {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(m)
		}
		b, _ := json.Marshal(m)
		return resp{status, http.Header{"Content-Type": {ct}}, b}
	}
	if err := c.validate(in, answer(200, "application/json", nil)); err != nil {
		t.Fatalf("the incident as served fails validation: %v", err)
	}
	if err := c.validate(in, answer(200, "application/json", func(m map[string]any) { m["resolved_at"] = nil })); err != nil {
		t.Errorf("resolved_at null fails validation: %v", err)
	}
	for name, bad := range map[string]resp{
		"an undocumented field":     answer(200, "application/json", func(m map[string]any) { m["extra"] = 1 }),
		"a nested undocumented one": answer(200, "application/json", func(m map[string]any) { m["postmortem"].(map[string]any)["extra"] = 1 }),
		"a missing field":           answer(200, "application/json", func(m map[string]any) { delete(m, "postmortem") }),
		"a time not RFC 3339":       answer(200, "application/json", func(m map[string]any) { m["started_at"] = "yesterday" }),
		"null where never null":     answer(200, "application/json", func(m map[string]any) { m["timeline"] = nil }),
		"a status not in the enum":  answer(200, "application/json", func(m map[string]any) { m["status"] = "burning" }),
		"an undocumented status":    answer(418, "application/json", nil),
		"another content type":      answer(200, "text/html", nil),
	} {
		if c.validate(in, bad) == nil {
			t.Errorf("the validator accepts an incident with %s", name)
		}
	}
}

// checkCoverage fails for every documented status of an operation that
// the test never saw, unless it is one of skip.
func (c *oaChecker) checkCoverage(t *testing.T, skip map[int]string) {
	t.Helper()
	for _, op := range c.operations() {
		method, path, _ := strings.Cut(op, " ")
		o := c.doc.Paths.Value(path).GetOperation(method)
		for code := range o.Responses.Map() {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s documents response %q: want status codes only", op, code)
				continue
			}
			if !c.seen[op][n] && skip[n] == "" {
				t.Errorf("%s documents %d, and no request of this test got it: exercise it, or say why it cannot be (oaUnreachable)", op, n)
			}
		}
	}
}

func errorText(body []byte) string {
	var e struct{ Error string }
	_ = json.Unmarshal(body, &e)
	return e.Error
}

func clipBody(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// appRoutes lists the patterns the app registers: ingest's from a
// Handler configured as the app configures it (with incidents that can
// be looked up by event, so every human route is there), and every
// pattern passed to a ServeMux's Handle or HandleFunc in the source of
// package app and of the packages of this module it imports (api, web,
// …).
func appRoutes(t *testing.T) []string {
	t.Helper()
	h, err := ingest.New(ingest.Options{Publisher: oaNoPublisher{}, Incidents: api.Enriched{}})
	if err != nil {
		t.Fatal(err)
	}
	routes := h.Routes()
	dirs := []string{"."}
	for _, dir := range oaImports(t) {
		dirs = append(dirs, filepath.Join("..", dir))
	}
	for _, dir := range dirs {
		// Package api's patterns are the API's: each must be readable.
		routes = append(routes, muxPatterns(t, dir, dir == filepath.Join("..", "api"))...)
	}
	slices.Sort(routes)
	return slices.Compact(routes)
}

// oaImports returns the directories (relative to the module root) of the
// module's packages that package app imports.
func oaImports(t *testing.T) []string {
	t.Helper()
	const module = "github.com/hindsight-sre/hindsight/"
	files, _ := filepath.Glob("*.go")
	var dirs []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, module) {
				dirs = append(dirs, strings.TrimPrefix(p, module))
			}
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

type oaNoPublisher struct{}

func (oaNoPublisher) Publish(context.Context, []hindsight.Event) (int, error) { return 0, nil }

// muxPatterns returns the patterns of the mux.Handle and mux.HandleFunc
// calls in the package in dir (test files left out): string literals, or
// constants of the package. strict fails on a pattern it cannot read
// (app mounts ingest's routes from a variable: those come from Routes).
func muxPatterns(t *testing.T, dir string, strict bool) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	consts := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								consts[n.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				}
			}
		}
	}
	var out []string
	for _, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			switch arg := call.Args[0].(type) {
			case *ast.BasicLit:
				if p, err := strconv.Unquote(arg.Value); err == nil {
					out = append(out, p)
					return true
				}
			case *ast.Ident:
				if p, ok := consts[arg.Name]; ok {
					out = append(out, p)
					return true
				}
			}
			if strict {
				t.Errorf("%s: a route pattern this test cannot read; make it a string literal or a constant", fset.Position(call.Pos()))
			}
			return true
		})
	}
	return out
}

func oaSignStandardWebhooks(id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, oaSWKey)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// oaValidBody is, per operation, a body that gets past parsing, so that
// the generic checks reach the status they aim at.
func oaValidBody(op string, entry string) []byte {
	switch op {
	case "POST /hooks/alertmanager":
		return []byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"X","service":"x"},"startsAt":"2026-01-01T00:00:00Z"}]}`)
	case "POST /hooks/deploy":
		return []byte(`{"service":"x","status":"started"}`)
	case "POST /hooks/github":
		return []byte(`{"zen":"hi"}`)
	case "POST /api/v1/incidents":
		return []byte(`{"service":"x","title":"y"}`)
	case "POST /api/v1/incidents/{id}/notes":
		return []byte(`{"text":"a note"}`)
	case "PUT /api/v1/incidents/{id}/draft":
		return []byte(`{"version":0,"summary":"s"}`)
	case "PUT /api/v1/incidents/{id}/hidden":
		return []byte(fmt.Sprintf(`{"entry":%q,"hidden":false}`, entry))
	case "PUT /api/v1/incidents/{id}/state":
		return []byte(`{"state":"draft"}`)
	case "POST /api/v1/incidents/{id}/end":
		return []byte(`{}`)
	}
	return nil
}

func (c *oaChecker) bodyOps() []string {
	var ops []string
	for _, op := range c.operations() {
		method, path, _ := strings.Cut(op, " ")
		if c.doc.Paths.Value(path).GetOperation(method).RequestBody != nil {
			ops = append(ops, op)
		}
	}
	return ops
}

func oaHeaders(op string) map[string]string {
	if op == "POST /hooks/github" {
		return map[string]string{"X-GitHub-Event": "deployment_status"}
	}
	return nil
}

// The document lists exactly what the app serves, and every answer of
// every operation, success and error, matches it.
func TestOpenAPIDescribesTheAPI(t *testing.T) {
	c := newOAChecker(t)
	a := boot(t, t.TempDir(), oaConfig)
	c.base = "http://" + a.Addr()

	// The document is served, as JSON, without credentials.
	r := c.do(t, oaReq{method: "GET", path: "/api/v1/openapi.json", noAuth: true, want: 200})
	if !bytes.Equal(r.body, api.OpenAPI()) || r.header.Get("Content-Type") != "application/json" || !json.Valid(r.body) {
		t.Errorf("GET /api/v1/openapi.json = %s, %d bytes; want api/openapi.json as application/json", r.header.Get("Content-Type"), len(r.body))
	}

	// Every route the app serves is documented, and every operation
	// documented is served (do checks that no answer comes from the
	// mux's 404 or 405).
	served, documented := appRoutes(t), c.operations()
	for _, p := range served {
		_, path, _ := strings.Cut(p, " ")
		if (strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/hooks/")) && !slices.Contains(documented, p) {
			t.Errorf("the app serves %q, which api/openapi.json does not document", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(served, p) {
			t.Errorf("api/openapi.json documents %q, which the app does not serve", p)
		}
	}

	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-30 * time.Minute)

	// Hooks.
	deploy := fmt.Sprintf(`{"id":"ci-7","service":"checkout","environment":"prod","version":"v2.3.1","status":"succeeded","time":%q,"actor":"bob","commit":"9f2c1ab","url":"https://ci.example/7","description":"release","labels":{"cluster":"eu1"}}`,
		start.Add(-12*time.Minute).Format(time.RFC3339))
	c.do(t, oaReq{method: "POST", path: "/hooks/deploy", body: []byte(deploy), want: 200})
	signed := []byte(`{"service":"search","status":"started"}`)
	c.do(t, oaReq{method: "POST", path: "/hooks/deploy", body: signed, noAuth: true, want: 200, header: map[string]string{
		"webhook-id": "msg_1", "webhook-timestamp": strconv.FormatInt(now.Unix(), 10), "webhook-signature": oaSignStandardWebhooks("msg_1", now.Unix(), signed)}})
	c.do(t, oaReq{method: "POST", path: "/hooks/deploy", body: []byte(`{"status":"succeeded"}`), want: 400})
	c.do(t, oaReq{method: "POST", path: "/hooks/deploy", body: []byte(`{"service":"x","status":"started","sevice":"typo"}`), want: 400})

	c.do(t, oaReq{method: "POST", path: "/hooks/github", body: []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), header: map[string]string{"X-GitHub-Event": "ping"}, want: 200})
	gh := fmt.Sprintf(`{"deployment_status":{"id":9,"state":"success","creator":{"login":"octocat"},"description":null,"environment":"prod","target_url":"https://ci.example/9","created_at":%[1]q,"updated_at":%[1]q},
		"deployment":{"id":42,"sha":"9f2c1ab0","ref":"v2.3.0","payload":{"service":"checkout"},"environment":"prod","creator":{"login":"octocat"}},
		"repository":{"name":"shop"},"sender":{"login":"octocat"}}`, start.Add(-3*time.Hour).Format(time.RFC3339))
	c.do(t, oaReq{method: "POST", path: "/hooks/github", body: []byte(gh), header: map[string]string{"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "d-1"}, want: 200})
	c.do(t, oaReq{method: "POST", path: "/hooks/github", body: []byte(gh), want: 400}) // no X-GitHub-Event
	c.do(t, oaReq{method: "POST", path: "/hooks/github", body: []byte(gh), header: map[string]string{"X-GitHub-Event": "deployment_status", "X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)}, want: 401})

	shift := strings.NewReplacer("2026-11-22T04:08:14Z", start.Format(time.RFC3339), "2026-11-22T04:10:26Z", now.Add(-time.Minute).Format(time.RFC3339))
	firing := []byte(shift.Replace(string(fixture(t, "01-first-firing.json"))))
	c.do(t, oaReq{method: "POST", path: "/hooks/alertmanager", body: firing, want: 200})
	// One usable alert and one unusable: recorded, with the other rejected.
	held := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"hindsight","groupKey":"{}:{service=\"batch\"}","truncatedAlerts":0,"alerts":[
		{"status":"firing","labels":{"alertname":"BatchSlow","service":"batch","severity":"warning"},"annotations":{"summary":"batch is slow"},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus/graph","fingerprint":"b0b0b0b0b0b0b0b0"},
		{"status":"firing","labels":{},"startsAt":%[1]q}]}`, start.Format(time.RFC3339))
	if r := c.do(t, oaReq{method: "POST", path: "/hooks/alertmanager", body: []byte(held), unchecked: true, want: 200}); !strings.Contains(string(r.body), `"rejected"`) {
		t.Errorf("a notification with an unusable alert = %s; want it under rejected", r.body)
	}
	if r := c.do(t, oaReq{method: "POST", path: "/hooks/alertmanager", body: []byte(`{"version":"4","alerts":[{"status":"burning","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}]}`), want: 400}); !strings.Contains(string(r.body), `"rejected"`) {
		t.Errorf("a notification with no usable alert = %s; want each reason under rejected", r.body)
	}
	c.do(t, oaReq{method: "POST", path: "/hooks/alertmanager", body: []byte(`{"version":"3","alerts":[]}`), want: 400})

	// The incidents the hooks made.
	var inc, pending hindsight.Incident
	eventually(t, "the checkout incident with its suspected change, and the batch one held back", func() bool {
		inc, pending = hindsight.Incident{}, hindsight.Incident{}
		for _, status := range []hindsight.Status{hindsight.StatusOpen, hindsight.StatusPending} {
			incs, _, err := a.Incidents().List(context.Background(), oaListOptions(status))
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range incs {
				switch i.Service {
				case "checkout":
					inc = i
				case "batch":
					pending = i
				}
			}
		}
		return inc.ID != "" && len(inc.SuspectedChanges) > 0 && pending.ID != ""
	})
	incURL := "/api/v1/incidents/" + inc.ID

	// Reading.
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents", want: 200})
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents?limit=10&status=open&service=checkout", want: 200})
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents?status=pending", want: 200})
	for _, q := range []string{"limit=0", "limit=501", "status=burning", "cursor=%21%21"} {
		c.do(t, oaReq{method: "GET", path: "/api/v1/incidents?" + q, want: 400})
	}
	c.do(t, oaReq{method: "GET", path: incURL, want: 200})
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents/" + pending.ID, want: 200})
	c.checkStrict(t, inc.ID, c.do(t, oaReq{method: "GET", path: incURL, want: 200}).body)
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents/inc-0000000000000000", want: 404})
	c.do(t, oaReq{method: "GET", path: incURL + "/postmortem.md", want: 200})
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents/inc-0000000000000000/postmortem.md", want: 404})
	var place boltstore.EventPlace
	alert := inc.Timeline[slices.IndexFunc(inc.Timeline, func(e hindsight.TimelineEntry) bool { return e.Kind.IsAlert() })].ID
	c.do(t, oaReq{method: "GET", path: "/api/v1/events/" + alert, want: 200}).json(t, &place)
	if place.Incident != inc.ID || place.Key != inc.Key {
		t.Errorf("the place of %s = %+v; want incident %s, key %s", alert, place, inc.ID, inc.Key)
	}
	c.do(t, oaReq{method: "GET", path: "/api/v1/events/" + pending.Timeline[0].ID, want: 200}).json(t, &place)
	if place.Incident != pending.ID || (place.Status != hindsight.StatusPending && place.Status != hindsight.StatusOpen) {
		t.Errorf("the place of held-back alert %s = %+v; want incident %s, pending (or open once open_after passed)", pending.Timeline[0].ID, place, pending.ID)
	}
	c.do(t, oaReq{method: "GET", path: "/api/v1/events/am-unknown", want: 404})

	// A note, and a declared incident (a second page for the list).
	c.do(t, oaReq{method: "POST", path: incURL + "/notes", body: []byte(fmt.Sprintf(`{"text":"rolling back","time":%q,"author":"bob"}`, start.Add(5*time.Minute).Format(time.RFC3339))), want: 201})
	c.do(t, oaReq{method: "POST", path: incURL + "/notes", body: []byte(`{"text":"  "}`), want: 400})
	declare := fmt.Sprintf(`{"service":"payments","title":"Customers report failed payments","start":%q,"severity":"critical","description":"by phone","labels":{"region":"eu"},"author":"carol"}`,
		start.Add(10*time.Minute).Format(time.RFC3339))
	var declared ingest.HumanResult
	c.do(t, oaReq{method: "POST", path: "/api/v1/incidents", body: []byte(declare), want: 201}).json(t, &declared)
	if declared.Incident == nil {
		t.Fatalf("declare answered no incident")
	}
	decURL := "/api/v1/incidents/" + declared.Incident.ID
	c.do(t, oaReq{method: "POST", path: "/api/v1/incidents", body: []byte(`{"service":"payments"}`), want: 400})
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents?limit=1", want: 200}).json(t, &page)
	if page.NextCursor == "" {
		t.Fatalf("a page of 1 of 2 incidents has no next_cursor")
	}
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents?limit=1&cursor=" + page.NextCursor, want: 200})
	eventually(t, "the note on the timeline", func() bool {
		got, err := a.Incidents().Incident(context.Background(), inc.ID)
		return err == nil && strings.Contains(kinds(*got), "note")
	})
	c.do(t, oaReq{method: "GET", path: incURL, want: 200})

	// The postmortem: edit, a stale edit, hide and show, state.
	c.do(t, oaReq{method: "PUT", path: incURL + "/draft", body: []byte(fmt.Sprintf(`{"version":0,"summary":"Checkout failed.","impact":"Payments","root_cause":"A bad push.","resolution":"Rolled back.",
		"action_items":[{"text":"Validate pushes","owner":"alice","due":"2026-12-15","done":true},{"text":"Alert sooner"}],"impact_start":%q}`, start.Add(-2*time.Minute).Format(time.RFC3339))), want: 200})
	c.do(t, oaReq{method: "PUT", path: incURL + "/draft", body: []byte(`{"version":0,"summary":"Bob's"}`), want: 409})
	c.do(t, oaReq{method: "PUT", path: incURL + "/draft", body: []byte(`{"summary":"no version"}`), want: 400})
	c.do(t, oaReq{method: "PUT", path: "/api/v1/incidents/" + pending.ID + "/draft", body: []byte(`{"version":0}`), want: 409})
	entry := inc.Timeline[0].ID
	c.do(t, oaReq{method: "PUT", path: incURL + "/hidden", body: []byte(fmt.Sprintf(`{"entry":%q,"hidden":true,"author":"alice"}`, entry)), want: 200})
	c.do(t, oaReq{method: "GET", path: incURL, want: 200})
	c.do(t, oaReq{method: "PUT", path: incURL + "/hidden", body: []byte(fmt.Sprintf(`{"entry":%q,"hidden":false}`, entry)), want: 200})
	c.do(t, oaReq{method: "PUT", path: incURL + "/hidden", body: []byte(`{"entry":"nope","hidden":true}`), want: 404})
	c.do(t, oaReq{method: "PUT", path: incURL + "/hidden", body: []byte(`{"entry":"x"}`), want: 400})
	c.do(t, oaReq{method: "PUT", path: "/api/v1/incidents/" + pending.ID + "/hidden", body: []byte(`{"entry":"x","hidden":true}`), want: 409})
	c.do(t, oaReq{method: "PUT", path: incURL + "/state", body: []byte(`{"state":"in review","author":"alice"}`), want: 200})
	c.do(t, oaReq{method: "PUT", path: incURL + "/state", body: []byte(`{"state":"published"}`), want: 409})
	c.do(t, oaReq{method: "PUT", path: incURL + "/state", body: []byte(`{"state":"done"}`), want: 400})

	// End the declared incident; ending it again, or an alert's, is refused.
	c.do(t, oaReq{method: "POST", path: decURL + "/end", body: []byte(fmt.Sprintf(`{"time":%q,"author":"carol"}`, now.Add(-time.Minute).Format(time.RFC3339))), want: 200})
	c.do(t, oaReq{method: "POST", path: decURL + "/end", body: []byte(`{}`), want: 409})
	c.do(t, oaReq{method: "POST", path: incURL + "/end", body: []byte(`{"time":"soon"}`), want: 400})

	// Resolve the checkout incident, and publish its postmortem.
	resolved := []byte(shift.Replace(string(fixture(t, "04-resolved.json"))))
	c.do(t, oaReq{method: "POST", path: "/hooks/alertmanager", body: resolved, want: 200})
	eventually(t, "the checkout incident resolved", func() bool {
		got, err := a.Incidents().Incident(context.Background(), inc.ID)
		return err == nil && got.Status == hindsight.StatusResolved
	})
	c.do(t, oaReq{method: "PUT", path: incURL + "/state", body: []byte(`{"state":"published"}`), want: 200})
	c.do(t, oaReq{method: "GET", path: "/api/v1/incidents?status=resolved", want: 200})
	c.do(t, oaReq{method: "GET", path: incURL + "/postmortem.md", want: 200})

	// The report.
	var rep api.Report
	c.do(t, oaReq{method: "GET", path: "/api/v1/report", want: 200}).json(t, &rep)
	if len(rep.Groups) == 0 {
		t.Errorf("the report has no groups: %+v", rep)
	}
	c.do(t, oaReq{method: "GET", path: "/api/v1/report?since=2w&until=" + now.Add(time.Hour).Format("2006-01-02"), want: 200})
	c.do(t, oaReq{method: "GET", path: "/api/v1/report?since=" + now.Add(time.Hour).Format(time.RFC3339) + "&until=1h", want: 400})
	c.do(t, oaReq{method: "GET", path: "/api/v1/report?since=yesterday", want: 400})

	// Operations.
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		c.do(t, oaReq{method: "GET", path: p, want: 200})
	}
	c.do(t, oaReq{method: "GET", path: "/metrics", header: map[string]string{"Accept": "application/openmetrics-text; version=1.0.0"}, want: 200})

	// Errors every operation shares, operation by operation.
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		concrete := strings.ReplaceAll(path, "{id}", inc.ID)
		o := c.doc.Paths.Value(path).GetOperation(method)
		body := oaValidBody(op, entry)
		if o.Security == nil || len(*o.Security) > 0 {
			c.do(t, oaReq{method: method, path: concrete, body: body, header: oaHeaders(op), noAuth: true, want: 401})
		}
		if strings.Contains(path, "{id}") {
			c.do(t, oaReq{method: method, path: strings.ReplaceAll(path, "{id}", "inc-0000000000000000"), body: body, want: 404})
		}
		if o.RequestBody == nil {
			continue
		}
		c.do(t, oaReq{method: method, path: concrete, body: []byte(`{"version":`), header: oaHeaders(op), want: 400})
		c.do(t, oaReq{method: method, path: concrete, body: body, header: map[string]string{"Content-Type": "text/plain"}, want: 415})
		limit := oaMaxBody
		if op == "POST /hooks/alertmanager" {
			limit = oaMaxAMBody
		}
		big := []byte(`{"padding":"` + strings.Repeat("x", limit) + `"}`)
		c.do(t, oaReq{method: method, path: concrete, body: big, header: oaHeaders(op), want: 413})
	}

	c.checkCoverage(t, oaUnreachable)
}

func oaListOptions(s hindsight.Status) boltstore.ListOptions {
	return boltstore.ListOptions{Limit: 100, Status: s}
}

// With the broker away, every operation that records an event answers 503
// with Retry-After, as documented, and readiness says so.
func TestOpenAPIBrokerAway(t *testing.T) {
	c := newOAChecker(t)
	ns := natstest.RunJetStream(t)
	a := boot(t, t.TempDir(), "", func(o *app.Options) { o.NatsURL = ns.ClientURL() })
	c.base = "http://" + a.Addr()

	var declared ingest.HumanResult
	c.do(t, oaReq{method: "POST", path: "/api/v1/incidents", body: []byte(`{"service":"payments","title":"Failed payments"}`), want: 201}).json(t, &declared)
	if declared.Incident == nil {
		t.Fatal("declare answered no incident")
	}
	entry := declared.Incident.Timeline[0].ID
	ns.Shutdown()
	ns.WaitForShutdown()

	var n int
	for _, op := range c.operations() {
		method, path, _ := strings.Cut(op, " ")
		if o := c.doc.Paths.Value(path).GetOperation(method); o.RequestBody == nil || o.Responses.Status(503) == nil {
			continue
		}
		n++
		h := oaHeaders(op)
		if op == "POST /hooks/github" {
			// Without auth.github, a deployment status.
			h = map[string]string{"X-GitHub-Event": "deployment_status"}
		}
		body := oaValidBody(op, entry)
		if op == "POST /hooks/github" {
			body = []byte(`{"deployment_status":{"state":"success"},"deployment":{"id":1},"repository":{"name":"shop"}}`)
		}
		r := c.do(t, oaReq{method: method, path: strings.ReplaceAll(path, "{id}", declared.Incident.ID), body: body, header: h, want: 503})
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s answered 503 without Retry-After", op)
		}
	}
	if n < 9 {
		t.Errorf("%d operations document a 503; want every one that records an event", n)
	}
	c.do(t, oaReq{method: "GET", path: "/readyz", want: 503})
}
