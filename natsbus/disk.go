package natsbus

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DiskGuard keeps the embedded JetStream off a full disk. nats-server
// treats a failed write as critical: the stream keeps failing every
// publish, even once space is back, until JetStream restarts. So the
// guard refuses publishes (503, the sender retries) while the store's
// filesystem has less than Reserve bytes free, and restarts JetStream
// when space comes back after running low, in case a write failed anyway
// (another process filled the disk between two looks).
type DiskGuard struct {
	dir     string
	reserve uint64
	free    atomic.Uint64
	low     atomic.Bool
}

// NewDiskGuard watches the filesystem holding dir.
func NewDiskGuard(dir string, reserve uint64) *DiskGuard {
	g := &DiskGuard{dir: dir, reserve: reserve}
	g.check()
	return g
}

func (g *DiskGuard) check() (free uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return 0, err
	}
	free = st.Bavail * uint64(st.Bsize)
	g.free.Store(free)
	return free, nil
}

// Err says why publishing must wait, or nil.
func (g *DiskGuard) Err() error {
	if free := g.free.Load(); free < g.reserve {
		return fmt.Errorf("the data directory's disk is full: %d bytes free, %d reserved", free, g.reserve)
	}
	return nil
}

// Run looks at the free space every interval until ctx is done, and
// restarts ns's JetStream when space comes back after running low or when
// JetStream shut itself down.
func (g *DiskGuard) Run(ctx context.Context, ns *server.Server, storeDir string, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		free, err := g.check()
		if err != nil {
			log.Warn("cannot read free disk space", "dir", g.dir, "err", err)
			continue
		}
		switch {
		case free < g.reserve:
			if !g.low.Swap(true) {
				log.Error("disk nearly full: refusing events until space is freed (senders get 503 and retry)", "dir", g.dir, "free_bytes", free, "reserve_bytes", g.reserve)
			}
		case g.low.Load() || !ns.JetStreamEnabled():
			log.Warn("disk space is back: restarting the embedded JetStream to clear any failed write", "free_bytes", free)
			if ns.JetStreamEnabled() {
				if err := ns.ShutdownJetStream(); err != nil {
					log.Error("stop JetStream", "err", err)
					continue
				}
			}
			if err := ns.EnableJetStream(&server.JetStreamConfig{StoreDir: storeDir}); err != nil {
				log.Error("restart JetStream failed; will retry", "err", err)
				continue
			}
			g.low.Store(false)
		}
	}
}
