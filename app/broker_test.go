package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/internal/natstest"
)

// An external nats-server (built from the module version in go.mod) is
// killed and restarted under load: while it is down the hooks answer 503
// with Retry-After, never 2xx; once it is back, ingest resumes and every
// event that got a 2xx is on exactly one timeline entry.
func TestExternalNATSRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs nats-server")
	}
	nats := natstest.StartProcess(t, t.TempDir())
	a := boot(t, t.TempDir(), "", func(o *app.Options) {
		o.NatsURL = nats.URL()
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	})
	url := "http://" + a.Addr() + "/hooks/alertmanager"
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

	var mu sync.Mutex
	acked := map[string]bool{}
	statuses := map[int]int{}
	var downFrom, downTo time.Time // the outage, as the test saw it
	okDuringOutage := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 15 * time.Second}
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				body, ids := loadNotification(fmt.Sprintf("w%d-n%d", w, n), base)
				sent := time.Now()
				res, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Errorf("post: %v", err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				mu.Lock()
				statuses[res.StatusCode]++
				switch res.StatusCode {
				case 200:
					for _, id := range ids {
						acked[id] = true
					}
					if !downFrom.IsZero() && sent.After(downFrom) && (downTo.IsZero() || time.Now().Before(downTo)) {
						okDuringOutage++
					}
				case 503:
					if res.Header.Get("Retry-After") == "" {
						t.Errorf("503 without Retry-After")
					}
				default:
					t.Errorf("status %d during the broker restart", res.StatusCode)
				}
				mu.Unlock()
				if res.StatusCode == 503 {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	nats.Kill()
	mu.Lock()
	downFrom = time.Now()
	mu.Unlock()
	time.Sleep(2 * time.Second)
	mu.Lock()
	downTo = time.Now()
	mu.Unlock()
	restarted := time.Now()
	nats.Start()
	// Ingest resumes by itself.
	var resumed time.Duration
	for {
		mu.Lock()
		before := statuses[200]
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		after := statuses[200]
		mu.Unlock()
		if after > before {
			resumed = time.Since(restarted)
			break
		}
		if time.Since(restarted) > 30*time.Second {
			t.Fatal("ingest did not resume within 30s of nats-server's restart")
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if okDuringOutage != 0 {
		t.Fatalf("%d requests sent while nats-server was down got 200", okDuringOutage)
	}
	if statuses[503] == 0 {
		t.Fatal("no request saw the outage (503)")
	}
	// The correlator may lag behind a burst under the race detector;
	// catching up is part of what is measured.
	caughtUp := time.Now()
	eachOnATimeline(t, a, acked, 90*time.Second)
	t.Logf("statuses %v; %d acknowledged events all on exactly one entry; ingest resumed %s after nats-server restarted; the correlator caught up %s after the load stopped",
		statuses, len(acked), resumed.Round(time.Millisecond), time.Since(caughtUp).Round(time.Millisecond))
}

// loadNotification is an Alertmanager payload with 5 new firing alerts.
func loadNotification(prefix string, start time.Time) ([]byte, []string) {
	var alerts []map[string]any
	var ids []string
	for i := range 5 {
		fp := fmt.Sprintf("%s-%d", prefix, i)
		alerts = append(alerts, map[string]any{"status": "firing", "startsAt": start, "fingerprint": fp,
			"labels": map[string]string{"alertname": "Load", "service": fmt.Sprintf("svc-%d", i%3), "instance": fp}})
		ids = append(ids, hindsight.AlertEventID(fp, start, "firing"))
	}
	body, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "r", "groupKey": "g", "alerts": alerts})
	return body, ids
}

// Against a nats-server older than 2.10 Hindsight refuses to start rather
// than create a stream that silently lacks what it asked for. Debian's
// nats-server package (2.9) provides one; CI installs it.
func TestRefusesOldNATSServer(t *testing.T) {
	bin := "/usr/sbin/nats-server"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: .ci/run installs Debian's nats-server (2.9) for this test", bin)
		}
		t.Skipf("%s missing: apt-get install nats-server (Debian's 2.9) to run this test", bin)
	}
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	if !strings.Contains(string(out), "v2.9.") {
		t.Skipf("%s is %s, not a 2.9 server", bin, out)
	}
	port := natstest.FreePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait for it to listen, so the refusal is about its version.
	eventuallyWithin(t, 10*time.Second, "nats-server 2.9 to listen", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	_, err := app.New(context.Background(), app.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), NatsURL: fmt.Sprintf("nats://127.0.0.1:%d", port)})
	if err == nil || !strings.Contains(err.Error(), "too old") || !strings.Contains(err.Error(), "2.10") {
		t.Fatalf("New against nats-server 2.9 = %v, want a refusal naming 2.10", err)
	}
}
