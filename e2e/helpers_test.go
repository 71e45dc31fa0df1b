package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
)

// client is for every request the tests make: nothing may hang a test.
var client = &http.Client{Timeout: 10 * time.Second}

// program finds one of names on PATH. When none is there it fails the
// test under CI (which installs the Debian package) and skips it
// elsewhere, saying how to install it.
func program(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found on PATH (looked for %s): install Debian's package with `apt-get install %s`",
		pkg, strings.Join(names, ", "), pkg)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must install it (.ci/run)", msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before ours binds it: startServer retries.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a program started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string        // file with its stdout and stderr
	done chan struct{} // closed when it exited
	err  error         // its exit status, once done is closed
	addr string        // host:port it listens on (startServer)
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProcess starts bin with args in dir, its output going to a file in
// t.TempDir(). When the test ends the process is stopped by its PID
// (SIGTERM, then SIGKILL after 10s), and if the test failed the end of its
// output is printed.
func startProcess(t *testing.T, name, dir, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	t.Logf("started %s (pid %d): %s %s", name, cmd.Process.Pid, bin, strings.Join(args, " "))
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- %s output (last lines of %s):\n%s", name, logPath, tail(logPath, 150))
		}
	})
	return p
}

// stop ends the process by its PID: SIGTERM, then SIGKILL if it lingers.
func (p *proc) stop(t *testing.T) {
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("%s (pid %d) ignored SIGTERM for 10s: killing it", p.name, p.cmd.Process.Pid)
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines left out ...]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// startServer starts a program that listens on a free port of 127.0.0.1
// (args gets the host:port) and waits until GET readyPath answers 200. If
// the program exits before it is ready (another process took the port),
// it tries again on another port, three times in all.
func startServer(t *testing.T, name, dir, bin, readyPath string, args func(addr string) []string) *proc {
	t.Helper()
	var last *proc
	for attempt := 1; attempt <= 3; attempt++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		p := startProcess(t, name, dir, bin, args(addr)...)
		p.addr = addr
		err := waitHTTP(p, "http://"+addr+readyPath, 30*time.Second)
		if err == nil {
			return p
		}
		if !p.exited() {
			t.Fatalf("%s: %v\n--- its output:\n%s", name, err, tail(p.log, 150))
		}
		t.Logf("%s exited before it was ready (attempt %d): %v", name, attempt, err)
		last = p
	}
	t.Fatalf("%s exited before it was ready, three times; last output:\n%s", name, tail(last.log, 150))
	return nil
}

// waitHTTP polls url until it answers 200, the process exits, or the
// timeout passes.
func waitHTTP(p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if p.exited() {
			return fmt.Errorf("%s exited (%v) while waiting for %s", p.name, p.err, url)
		}
		res, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: last answer %s", url, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hindsightServer is a Hindsight running in the test process.
type hindsightServer struct {
	app   *app.App
	base  string // http://127.0.0.1:port
	token string // bearer token Alertmanager must send
}

// bootHindsight starts Hindsight in-process on a random loopback port with
// its embedded NATS and bbolt in a temporary directory, and a config that
// requires a random bearer token on /hooks/alertmanager. Its logs go to a
// file, printed with its incidents when the test fails.
func bootHindsight(t *testing.T) *hindsightServer {
	t.Helper()
	dir := t.TempDir()
	token := rand.Text()
	config := filepath.Join(dir, "hindsight.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "auth:\n  alertmanager: {bearer_token: %s}\n", token), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "hindsight.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), app.Options{
		Listen:     "127.0.0.1:0",
		DataDir:    filepath.Join(dir, "data"),
		ConfigFile: config,
		Logger:     slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		logFile.Close()
		t.Fatalf("start Hindsight: %v", err)
	}
	h := &hindsightServer{app: a, base: "http://" + a.Addr(), token: token}
	t.Cleanup(func() {
		if t.Failed() {
			if body, _, err := get(h.base + "/api/v1/incidents"); err == nil {
				t.Logf("--- Hindsight's incidents at the end:\n%s", body)
			}
		}
		if err := a.Close(); err != nil {
			t.Errorf("close Hindsight: %v", err)
		}
		logFile.Close()
		if t.Failed() {
			t.Logf("--- Hindsight's log (last lines):\n%s", tail(logPath, 100))
		}
	})
	return h
}

// get fetches url and returns its body and status.
func get(url string) ([]byte, int, error) {
	res, err := client.Get(url)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return b, res.StatusCode, err
}

// incidents lists Hindsight's incidents through its API.
func (h *hindsightServer) incidents(t *testing.T) []hindsight.Incident {
	t.Helper()
	body, status, err := get(h.base + "/api/v1/incidents?limit=100")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /api/v1/incidents = %d %s (%v)", status, body, err)
	}
	var out struct {
		Incidents []hindsight.Incident `json:"incidents"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode incidents %s: %v", body, err)
	}
	return out.Incidents
}

// metrics fetches Hindsight's /metrics.
func (h *hindsightServer) metrics(t *testing.T) string {
	t.Helper()
	return metricsAt(t, h.base+"/metrics")
}

func metricsAt(t *testing.T, url string) string {
	t.Helper()
	body, status, err := get(url)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s = %d (%v)", url, status, err)
	}
	return string(body)
}

// metric returns the value of one series in Prometheus text format,
// written exactly as exposed (`name{label="value"}`), and whether it is
// there.
func metric(text, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), series+" ")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		return v, err == nil
	}
	return 0, false
}

// sumMetric adds up every series of name whose labels contain all of
// labels (each written `key="value"`).
func sumMetric(text, name string, labels ...string) float64 {
	var sum float64
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		series, value, _ := strings.Cut(rest, " ")
		fields := strings.Fields(value)
		match := len(fields) > 0
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// eventually polls cond every 200ms until it holds or timeout passes. cond
// describes what it saw, for the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, saw := cond()
		if ok {
			t.Logf("%s: after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s; last saw: %s", timeout, what, saw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}

// forService returns the incidents of one service.
func forService(incs []hindsight.Incident, service string) []hindsight.Incident {
	var out []hindsight.Incident
	for _, inc := range incs {
		if inc.Service == service {
			out = append(out, inc)
		}
	}
	return out
}

// countKinds counts an incident's timeline entries by kind.
func countKinds(inc hindsight.Incident) map[hindsight.Kind]int {
	n := map[hindsight.Kind]int{}
	for _, e := range inc.Timeline {
		n[e.Kind]++
	}
	return n
}

// describe summarises incidents for failure messages.
func describe(incs []hindsight.Incident) string {
	if len(incs) == 0 {
		return "no incidents"
	}
	var b strings.Builder
	for _, inc := range incs {
		fmt.Fprintf(&b, "[%s %s service=%s severity=%s timeline:", inc.ID, inc.Status, inc.Service, inc.Severity)
		for _, e := range inc.Timeline {
			fmt.Fprintf(&b, " %s(%s@%s)", e.Kind, e.Labels["alertname"], e.Time.Format(time.TimeOnly))
		}
		b.WriteString("] ")
	}
	return b.String()
}

// alertmanager is a running prometheus-alertmanager.
type alertmanager struct {
	*proc
	base string
}

// alertmanagerConfig routes every alert to Hindsight's webhook, grouped by
// service, with short intervals so a test sees repeats within seconds.
const alertmanagerConfig = `route:
  receiver: hindsight
  group_by: [service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4s
receivers:
  - name: hindsight
    webhook_configs:
      - url: %s/hooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: %s
`

// startAlertmanager starts Debian's prometheus-alertmanager with its
// webhook pointing at h, clustering off, on a free loopback port, and
// waits until it is ready.
func startAlertmanager(t *testing.T, bin string, h *hindsightServer) *alertmanager {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(config, fmt.Appendf(nil, alertmanagerConfig, h.base, h.token), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, "alertmanager", dir, bin, "/-/ready", func(addr string) []string {
		return []string{
			"--config.file=" + config,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--cluster.listen-address=", // no clustering, no gossip port
			"--log.level=debug",
		}
	})
	am := &alertmanager{proc: p, base: "http://" + p.addr}
	t.Cleanup(func() {
		if t.Failed() && !p.exited() {
			if body, _, err := get(am.base + "/api/v2/alerts"); err == nil {
				t.Logf("--- Alertmanager's alerts at the end:\n%s", body)
			}
		}
	})
	return am
}

// amAlert is one alert as POST /api/v2/alerts takes it.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// post sends alerts to Alertmanager's API, as Prometheus does.
func (am *alertmanager) post(alerts []amAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	res, err := client.Post(am.base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("POST /api/v2/alerts = %s %s", res.Status, b)
	}
	return nil
}

// checkWebhookDelivery fails the test when Alertmanager counted a failed
// webhook notification (Hindsight answered other than 2xx) or none at all.
func (am *alertmanager) checkWebhookDelivery(t *testing.T) {
	t.Helper()
	m := metricsAt(t, am.base+"/metrics")
	sent := sumMetric(m, "alertmanager_notifications_total", `integration="webhook"`)
	failed := sumMetric(m, "alertmanager_notifications_failed_total", `integration="webhook"`)
	t.Logf("Alertmanager sent %v webhook notifications, %v failed", sent, failed)
	if sent == 0 || failed != 0 {
		t.Errorf("Alertmanager's webhook notifications: %v sent, %v failed; want some, none failed", sent, failed)
	}
}
