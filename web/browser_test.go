package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
)

// chromium is where Debian's package puts the browser (.ci/run installs
// it).
const chromium = "/usr/bin/chromium"

// screenshot is the incident page as the browser test last saw it.
const screenshot = "testdata/artifacts/incident.png"

const fixtures = "../ingest/testdata/alertmanager-0.25"

// TestBrowser drives headless Chromium through the real app: a
// postmortem edit and a note that survive a reload, an alert that
// appears on an open page without one, an edit that lost a race showing
// both texts, a new incident's row on the open incidents page, and an
// incident declared and ended by hand.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs %s for the browser test (apt-get install chromium): %v", chromium, err)
		}
		t.Skipf("no %s: install Debian's chromium (apt-get install chromium) to run the browser test", chromium)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	a, err := app.New(ctx, app.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	base := "http://" + a.Addr()
	// The deploy ten minutes before the first alert: the suspected change.
	deploy := fmt.Sprintf(`{"id":"gh-42","service":"checkout","environment":"prod","version":"v2.3.1","status":"succeeded","time":"%s58:00Z","actor":"alice","commit":"9f2c1ab"}`,
		time.Now().UTC().Add(-3*time.Hour).Format("2006-01-02T15:"))
	send(t, "POST", base+"/hooks/deploy", []byte(deploy), http.StatusOK)
	send(t, "POST", base+"/hooks/alertmanager", amFixture(t, "01-first-firing.json"), http.StatusOK)
	var inc hindsight.Incident
	eventually(t, ctx, "the first alert's incident", func() bool {
		var list struct{ Incidents []hindsight.Incident }
		json.Unmarshal(send(t, "GET", base+"/api/v1/incidents", nil, http.StatusOK), &list)
		if len(list.Incidents) == 1 {
			inc = list.Incidents[0]
		}
		return inc.ID != ""
	})
	edit, page := base+"/incidents/"+inc.ID+"/edit", base+"/incidents/"+inc.ID

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	summary, note := "Checkout p99 latency over 2s after v2.3.1; rolled back.", "Rolled back v2.3.1 at 04:20"
	run(t, browser, "edit the summary, save, and add a note",
		chromedp.Navigate(edit),
		chromedp.WaitVisible(chromedp.CSS(`#draft-form`)),
		chromedp.SetValue(chromedp.CSS(`#draft-form textarea[name="summary"]`), summary),
		chromedp.Click(chromedp.CSS(`#draft-form button[type="submit"]`)),
		waitFor(`document.querySelector('#draft-form .msg').textContent.startsWith('Saved: version 1')`),
		chromedp.SendKeys(chromedp.CSS(`#note-form input[name="text"]`), note),
		chromedp.Click(chromedp.CSS(`#note-form button[type="submit"]`)),
		waitFor(timelineHas(note)),
	)
	run(t, browser, "reload: both are still there",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#draft-form`)),
		waitFor(timelineHas(note)),
		waitFor(`document.querySelector('pre.draft').textContent.includes(`+jsString(summary)+`)`),
	)
	gotSummary, err := chromedp.Run(browser, chromedp.Value(chromedp.CSS(`#draft-form textarea[name="summary"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if gotSummary != summary {
		t.Errorf("summary after reload = %q, want %q", gotSummary, summary)
	}

	run(t, browser, "open the incident page, live",
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`#live-top svg`)),
		waitFor(`document.getElementById('live-status').classList.contains('on')`),
	)
	send(t, "POST", base+"/hooks/alertmanager", amFixture(t, "02-second-alert-joins.json"), http.StatusOK)
	run(t, browser, "a second alert appears without a reload",
		waitFor(timelineHas("5xx ratio above 5% on checkout")), // HighErrorRate's summary
		waitFor(`document.querySelectorAll('#live-top svg rect.bar').length === 2`),
	)
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(screenshot), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(screenshot)
	t.Logf("screenshot of the incident page: %s", abs)

	// Two saves from the same version: the second is refused and shows
	// both texts.
	theirs, mine := "Their summary, saved first.", "My summary, saved second."
	run(t, browser, "open the editor on version 1",
		chromedp.Navigate(edit),
		chromedp.WaitVisible(chromedp.CSS(`#draft-form`)),
		waitFor(`document.querySelector('#draft-form input[name="version"]').value === '1'`),
	)
	body, _ := json.Marshal(map[string]any{"version": 1, "summary": theirs, "author": "someone else"})
	send(t, "PUT", base+"/api/v1/incidents/"+inc.ID+"/draft", body, http.StatusOK)
	run(t, browser, "save from the stale version: a conflict, with both texts",
		chromedp.SetValue(chromedp.CSS(`#draft-form textarea[name="summary"]`), mine),
		chromedp.Click(chromedp.CSS(`#draft-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#conflict`)),
		waitFor(`document.querySelector('#conflict tbody').textContent.includes(`+jsString(theirs)+`) && document.querySelector('#conflict tbody').textContent.includes(`+jsString(mine)+`)`),
		chromedp.Click(chromedp.CSS(`#conflict button[data-action="take-theirs"]`)),
		waitFor(`document.querySelector('#draft-form textarea[name="summary"]').value === `+jsString(theirs)+
			` && document.querySelector('#draft-form input[name="version"]').value === '2'`),
	)

	run(t, browser, "open the incidents page, live",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-id="`+inc.ID+`"]`)),
		waitFor(`document.getElementById('live-status').classList.contains('on')`),
	)
	// The same alert on another service (and series): a new incident.
	other := strings.NewReplacer(`"checkout`, `"search`, "f78816deac5e68e9", "0123456789abcdef").Replace(string(amFixture(t, "01-first-firing.json")))
	send(t, "POST", base+"/hooks/alertmanager", []byte(other), http.StatusOK)
	run(t, browser, "a new incident's row appears without a reload",
		waitFor(`Array.from(document.querySelectorAll('#rows tr')).some(r => r.textContent.includes('HighLatency on search'))`),
	)

	title := "Checkout card payments failing (declared)"
	run(t, browser, "declare an incident from the incidents page",
		chromedp.Click(chromedp.CSS(`details.declare summary`)),
		chromedp.SendKeys(chromedp.CSS(`#declare-form input[name="service"]`), "payments"),
		chromedp.SendKeys(chromedp.CSS(`#declare-form input[name="title"]`), title),
		chromedp.SendKeys(chromedp.CSS(`#declare-form input[name="severity"]`), "critical"),
		chromedp.Click(chromedp.CSS(`#declare-form button[type="submit"]`)),
	)
	// The page goes to the new incident's: a wait that began on the
	// incidents page ends with it, so wait again on the next one.
	declared := `location.pathname.startsWith('/incidents/') && document.querySelector('h1').textContent.startsWith(` + jsString(title) + `)`
	// (Chromium says so in several ways: "navigated", "Cannot find
	// context", "Execution context was destroyed".)
	for try := 1; ; try++ {
		err := chromedp.Do(browser, waitFor(declared))
		if err == nil {
			break
		}
		if ctx.Err() != nil || try == 5 {
			t.Fatalf("the declared incident's page: %v", err)
		}
	}
	run(t, browser, "end the declared incident",
		chromedp.Click(chromedp.CSS(`button[data-action="end"]`)),
		waitFor(`document.querySelector('#live-top .facts').dataset.status === 'resolved'`),
	)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript condition in the page until it holds.
func waitFor(cond string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond))
}

func timelineHas(text string) string {
	return `Array.from(document.querySelectorAll('#live-top .timeline .entry')).some(e => e.textContent.includes(` + jsString(text) + `))`
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// amFixture reads an Alertmanager capture with its times (2026-11-22
// 04:08 to 04:10) moved to the hour before the last, so that the pages,
// and the screenshot, show an incident of today.
func amFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("2026-11-22T04:"), []byte(fixtureHour))
}

// fixtureHour is the "YYYY-MM-DDTHH:" the captures' hour becomes.
var fixtureHour = time.Now().UTC().Add(-2 * time.Hour).Format("2006-01-02T15:")

func send(t *testing.T, method, url string, body []byte, want int) []byte {
	t.Helper()
	p := fetch(t, method, url, body)
	if p.status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, p.status, p.body, want)
	}
	return []byte(p.body)
}

func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
