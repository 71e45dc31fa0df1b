package app_test

import (
	"log/slog"

	"bytes"
	"fmt"
	"github.com/hindsight-sre/hindsight/app"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of the given size, or skips: it needs root
// (CI runs as root; elsewhere `sudo go test -run TestDiskFull ./app`).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a small filesystem to fill (%v %s): run as root", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// With the data directory's filesystem full, hooks answer 503 (never a
// 2xx for an event that was not stored) and Hindsight recovers by itself
// once there is space again.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a filesystem")
	}
	mnt := mountTmpfs(t, "40m")
	data := filepath.Join(mnt, "data")
	a := boot(t, data, "nats: {min_free_disk: 4194304}\n", func(o *app.Options) {
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	})
	url := "http://" + a.Addr() + "/hooks/alertmanager"
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	acked := map[string]bool{}
	client := &http.Client{Timeout: 30 * time.Second}
	post := func(prefix string) int {
		body, ids := loadNotification(prefix, base)
		res, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == 200 {
			for _, id := range ids {
				acked[id] = true
			}
		}
		return res.StatusCode
	}
	if code := post("before"); code != 200 {
		t.Fatalf("first post = %d", code)
	}
	// Fill the filesystem, leaving almost nothing.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	statuses := map[int]int{}
	// Each refused request waits out the publish timeout (10s) while
	// JetStream cannot write: a handful shows the behaviour.
	for i := range 4 {
		start := time.Now()
		code := post(fmt.Sprintf("full-%d", i))
		statuses[code]++
		t.Logf("disk full: request %d answered %d in %s", i, code, time.Since(start).Round(time.Millisecond))
		if code != 200 && code != 503 {
			t.Fatalf("disk full: status %d, want 503 (or 200 while buffers last)", code)
		}
	}
	if statuses[503] == 0 {
		t.Fatalf("the disk filled but no request got 503: %v", statuses)
	}
	// Space is back.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	eventuallyWithin(t, 60*time.Second, "ingest to accept events again", func() bool {
		return post(fmt.Sprintf("after-%d", time.Now().UnixNano())) == 200
	})
	took := time.Since(recovered)
	eachOnATimeline(t, a, acked, 60*time.Second)
	t.Logf("disk full: statuses %v; recovered %s after space came back; %d acknowledged events all on exactly one entry", statuses, took.Round(time.Millisecond), len(acked))
}
