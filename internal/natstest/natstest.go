// Package natstest runs real nats-servers with JetStream for tests.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hindsight-sre/hindsight/natsbus"
)

// RunJetStream starts an embedded nats-server with JetStream on file
// storage in a temporary directory, listening on a random loopback port,
// and shuts it down when the test ends.
func RunJetStream(t testing.TB) *server.Server {
	t.Helper()
	return RunJetStreamIn(t, t.TempDir())
}

// RunJetStreamIn is RunJetStream with a given store directory, so a test
// can restart a server on the same data.
func RunJetStreamIn(t testing.TB, dir string) *server.Server {
	t.Helper()
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}
