package app_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hindsight-sre/hindsight/natsbus"
)

// While serve runs on an embedded nats-server, <data-dir>/nats.url says
// where a reader on this machine finds the stream; it goes on Close.
func TestEmbeddedNATSWritesItsURL(t *testing.T) {
	dir := t.TempDir()
	a := boot(t, dir, "")
	path := filepath.Join(dir, natsbus.URLFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v (mode %v); want it, readable by its owner only", path, err, fi.Mode())
	}
	url, token, err := natsbus.ReadURLFile(path)
	if err != nil || token == "" {
		t.Fatalf("ReadURLFile: %q, token %q, %v", url, token, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := natsbus.OpenExisting(ctx, natsbus.Options{URL: url}); err == nil {
		t.Fatal("connected without the token")
	}
	b, err := natsbus.OpenExisting(ctx, natsbus.Options{URL: url, Token: token})
	if err != nil {
		t.Fatalf("connect with the file's URL: %v", err)
	}
	b.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("%s after Close: %v; want it gone", path, err)
	}
}
