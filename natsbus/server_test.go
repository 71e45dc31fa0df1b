package natsbus_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// The embedded server's loopback listener takes clients with its token
// only; the URL file gives a reader on the machine both.
func TestEmbeddedTokenAndURLFile(t *testing.T) {
	dir := t.TempDir()
	token := natsbus.NewToken()
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: filepath.Join(dir, "jetstream"), Port: -1, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	b := open(t, natsbus.Options{Server: ns, Token: token})
	if _, err := b.Publish(ctx, []hindsight.Event{event("a"), event("b")}); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, natsbus.URLFile)
	if err := natsbus.WriteURLFile(path, ns, token); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("url file: %v, mode %v; want 0600", err, fi.Mode())
	}
	data, _ := os.ReadFile(path)
	if want := "nats://" + token + "@127.0.0.1:"; !strings.HasPrefix(string(data), want) {
		t.Fatalf("url file holds %q, want it to start with %q", data, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".nats.url*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	addr, tok, err := natsbus.ReadURLFile(path)
	if err != nil || tok != token || strings.Contains(addr, token) || addr != ns.ClientURL() {
		t.Fatalf("ReadURLFile = %q, %q, %v; want %q and the token apart", addr, tok, err, ns.ClientURL())
	}

	if _, err := natsbus.OpenExisting(ctx, natsbus.Options{URL: addr}); err == nil {
		t.Fatal("TCP client without the token connected")
	} else if strings.Contains(err.Error(), token) {
		t.Fatalf("error shows the token: %v", err)
	}
	if _, err := natsbus.OpenExisting(ctx, natsbus.Options{URL: addr, Token: "wrong"}); err == nil {
		t.Fatal("TCP client with a wrong token connected")
	}
	r, err := natsbus.OpenExisting(ctx, natsbus.Options{URL: addr, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	if err := r.Replay(ctx, natsbus.ReplayOptions{}, func(rb natsbus.ReplayBatch) error {
		for _, d := range rb.Deliveries {
			got = append(got, d.Event.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("replayed %v over the listener, want a,b", got)
	}
}

func TestReadURLFileRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), natsbus.URLFile)
	for _, content := range []string{"", "http://x:1", "not a url\x00"} {
		os.WriteFile(path, []byte(content), 0o600)
		if _, _, err := natsbus.ReadURLFile(path); err == nil {
			t.Errorf("ReadURLFile(%q) gave no error", content)
		}
	}
}
