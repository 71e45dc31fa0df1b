package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/hindsight once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hindsight-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hindsight")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	cmd  *exec.Cmd
	addr string
}

var readyLine = regexp.MustCompile(`Hindsight is ready.*listen=(\S+)`)

// start runs `hindsight serve` on a random loopback port and waits for it.
func start(t *testing.T, dataDir string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return &proc{cmd: cmd, addr: a}
	case <-time.After(60 * time.Second):
		t.Fatal("hindsight did not become ready")
	}
	return nil
}

// notification is an Alertmanager payload with n new firing alerts.
func notification(prefix string, n int, base time.Time) ([]byte, []string) {
	type alert struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Fingerprint string            `json:"fingerprint"`
	}
	var alerts []alert
	var ids []string
	for i := range n {
		fp := fmt.Sprintf("%s-%d", prefix, i)
		svc := fmt.Sprintf("svc-%d", i%3)
		alerts = append(alerts, alert{Status: "firing", StartsAt: base, Fingerprint: fp,
			Labels:      map[string]string{"alertname": "Load", "service": svc, "instance": fp},
			Annotations: map[string]string{"summary": "load test"}})
		ids = append(ids, hindsight.AlertEventID(fp, base, "firing"))
	}
	body, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "hindsight",
		"groupKey": "{}:{}", "alerts": alerts})
	return body, ids
}

// A kill -9 at a random moment during sustained ingest loses no event
// that got a 2xx and doubles none: after a restart each is in exactly one
// timeline entry. HINDSIGHT_CRASH_ROUNDS sets the rounds (default 3).
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("HINDSIGHT_CRASH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	dir := t.TempDir()
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	acked := map[string]bool{}
	client := &http.Client{Timeout: 5 * time.Second}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range rounds {
		p := start(t, dir)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ctx.Err() == nil; n++ {
					body, ids := notification(fmt.Sprintf("r%d-w%d-n%d", round, w, n), 5, base)
					res, err := client.Post("http://"+p.addr+"/hooks/alertmanager", "application/json", bytes.NewReader(body))
					if err != nil {
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode == 200 {
						mu.Lock()
						for _, id := range ids {
							acked[id] = true
						}
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait()
		cancel()
		wg.Wait()
	}

	p := start(t, dir)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no request was acknowledged before the kills")
	}
	var seen map[string]int
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen = timelineIDs(t, client, p.addr)
		missing := 0
		for id := range acked {
			if seen[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events are on no timeline after %d kill -9 rounds", missing, len(acked), rounds)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s is on %d timeline entries, want 1", id, n)
		}
	}
	t.Logf("%d kill -9 rounds: %d acknowledged events, each on exactly one timeline entry (%d entries in all)", rounds, len(acked), len(seen))
}

func timelineIDs(t *testing.T, client *http.Client, addr string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	cursor := ""
	for {
		res, err := client.Get("http://" + addr + "/api/v1/incidents?limit=100&cursor=" + cursor)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Incidents  []hindsight.Incident
			NextCursor string `json:"next_cursor"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, inc := range page.Incidents {
			for _, e := range inc.Timeline {
				seen[e.ID]++
			}
		}
		if page.NextCursor == "" {
			return seen
		}
		cursor = page.NextCursor
	}
}

func TestServeStopsGracefullyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := start(t, t.TempDir())
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20s after SIGTERM")
	}
}

func TestStartupErrorsAreClear(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown role", []string{"serve", "--roles", "ingest,bogus"}, `unknown role "bogus"`},
		{"exposed without auth", []string{"serve", "--listen", "0.0.0.0:0"}, "--insecure"},
		{"missing config", []string{"serve", "--config", "/nonexistent.yml"}, "/nonexistent.yml"},
		{"old NATS URL unreachable", []string{"serve", "--nats-url", "nats://127.0.0.1:1"}, "connect to NATS at nats://127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary(t), append(tc.args, "--data-dir", t.TempDir())...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("got %v:\n%s\nwant a failure mentioning %q", err, out, tc.want)
			}
		})
	}
}

// A crash after the bbolt commit and before the JetStream ack (forced by
// a failpoint) adds nothing when the process comes back: the events of
// that batch are on exactly one timeline entry each.
func TestCrashBetweenCommitAndAck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the binary")
	}
	dir := t.TempDir()
	t.Setenv("HINDSIGHT_FAILPOINT", "exit-after-commit")
	p := start(t, dir)
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	body, ids := notification("commit-crash", 5, base)
	res, err := http.Post("http://"+p.addr+"/hooks/alertmanager", "application/json", bytes.NewReader(body))
	switch {
	case err != nil:
		// The correlator can commit and hit the failpoint before the
		// handler has written its answer: the exit code below says the
		// batch was committed, so JetStream had it.
		t.Logf("post: %v (the process exited before answering)", err)
	case res.StatusCode != 200:
		t.Fatalf("post: %v", res.Status)
	default:
		res.Body.Close()
	}
	err = p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 86 {
		t.Fatalf("process ended with %v, want the failpoint's exit code 86", err)
	}
	t.Setenv("HINDSIGHT_FAILPOINT", "")
	p = start(t, dir)
	// Send the same notification again, as Alertmanager would.
	res, err = http.Post("http://"+p.addr+"/hooks/alertmanager", "application/json", bytes.NewReader(body))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("post after restart: %v %v", err, res)
	}
	res.Body.Close()
	time.Sleep(500 * time.Millisecond)
	seen := timelineIDs(t, http.DefaultClient, p.addr)
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("event %s is on %d entries after the crash, want 1", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("%d timeline entries, want %d", len(seen), len(ids))
	}
}

// TestMain removes the binary binary built, once every test is done.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
