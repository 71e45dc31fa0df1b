package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
)

// rebuildOptions are rebuild's flags.
type rebuildOptions struct {
	dataDir    string
	natsURL    string
	configFile string
	out        string // empty: swap the result in as the data directory's state file
	batch      int
	// progressEvery is how often progress is printed.
	progressEvery time.Duration
}

func rebuildCmd(args []string, stderr io.Writer) error {
	flags := newFlags("rebuild", stderr)
	o := rebuildOptions{progressEvery: 2 * time.Second}
	flags.StringVar(&o.dataDir, "data-dir", "./hindsight-data", "data directory whose "+boltstore.FileName+" is rebuilt (and whose JetStream store is read without --nats-url)")
	flags.StringVar(&o.natsURL, "nats-url", "", "URL of the external NATS serve uses; empty reads the data directory's JetStream store with an embedded nats-server (serve must be stopped)")
	flags.StringVar(&o.configFile, "config", "", "serve's YAML config: its correlation settings decide the incidents")
	flags.StringVar(&o.out, "out", "", "write the rebuilt state to this new file and leave the data directory as it is (to compare)")
	flags.IntVar(&o.batch, "batch", 10000, "events folded per transaction: more is faster and takes more memory")
	flags.Usage = func() {
		fmt.Fprintf(stderr, `Usage: hindsight rebuild [flags]

Folds the event stream into a new state file, then swaps it in as
<data-dir>/%s and keeps the previous one as %s.bak-<time>.
With --out, writes the new file there and swaps nothing.

`, boltstore.FileName, boltstore.FileName)
		flags.PrintDefaults()
	}
	if err := parse(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Errorf("rebuild takes no arguments, got %q", flags.Args())}
	}
	if o.batch <= 0 {
		return usageError{fmt.Errorf("--batch %d: want a positive number", o.batch)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return rebuild(ctx, o, stderr)
}

// rebuild folds the events stream into a new state file and swaps it in
// (or leaves it at o.out).
func rebuild(ctx context.Context, o rebuildOptions, stderr io.Writer) (err error) {
	started := time.Now()
	stderr = &syncWriter{w: stderr} // NATS callbacks log from their own goroutines
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	say := func(format string, args ...any) { fmt.Fprintf(stderr, "rebuild: "+format+"\n", args...) }

	cfg, err := app.LoadConfig(o.configFile)
	if err != nil {
		return err
	}
	cc, err := cfg.CorrelateConfig()
	if err != nil {
		return fmt.Errorf("config %s: correlation: %w", o.configFile, err)
	}
	current := filepath.Join(o.dataDir, boltstore.FileName)
	stamp := started.UTC().Format("20060102T150405Z")
	target, swap := o.out, o.out == ""
	if swap {
		if _, err := os.Stat(o.dataDir); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		target = current + ".rebuild-" + stamp
	}
	if _, err := os.Lstat(target); err == nil {
		return fmt.Errorf("%s exists: rebuild writes a new file; remove it or choose another --out", target)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	// Keep serve out while rebuilding: two nats-servers on one JetStream
	// store corrupt it, and a swap must not pull the state file from
	// under a correlator. Serve holds the data directory's LOCK (and the
	// state file's bbolt lock); rebuild takes both.
	if swap || o.natsURL == "" {
		lockFile := filepath.Join(o.dataDir, "LOCK") // app's lockDataDir
		if f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600); err == nil {
			f.Close()
		}
		for _, path := range []string{lockFile, current} {
			release, err := boltstore.Lock(path)
			if errors.Is(err, boltstore.ErrLocked) {
				why := "rebuild would swap the state file from under it"
				if o.natsURL == "" {
					why = "rebuild reads " + filepath.Join(o.dataDir, "jetstream") + " with its own nats-server, and two must never share it"
				}
				return fmt.Errorf("%s is in use: stop `hindsight serve` on %s first (%s)", path, o.dataDir, why)
			}
			if err != nil {
				return err
			}
			defer release()
		}
	}

	bus, closeStream, err := openStream(ctx, streamSource{url: o.natsURL, dataDir: o.dataDir, name: "hindsight-rebuild"}, log)
	if err != nil {
		return err
	}
	defer closeStream()

	store, err := boltstore.Open(target)
	if err != nil {
		return err
	}
	// The new file counts only once it is whole: removed if the rebuild
	// fails, synced by Close before it is swapped in; the event index is
	// written in key order (BulkLoad).
	store.BulkLoad(0)
	defer func() {
		if store != nil {
			// Failed before the file was whole: no point writing it out.
			store.Discard()
		}
		if err != nil {
			os.Remove(target)
		}
	}()
	c, err := correlate.New(cc, store, log.With("component", "correlate"), nil)
	if err != nil {
		return err
	}

	st, err := foldStream(ctx, bus, foldOptions{batch: o.batch, progressEvery: o.progressEvery, into: target, say: say, log: log}, c)
	if err != nil {
		return fmt.Errorf("rebuild stopped after sequence %d (%s removed; nothing else changed): %w", st.through, target, err)
	}
	read, skipped, first, through := st.read, st.skipped, st.first, st.through
	if first == 0 {
		say("the stream holds no events")
	}
	if read == 0 && swap {
		if _, err := os.Stat(current); err == nil {
			return fmt.Errorf("the stream holds no events: not replacing %s with an empty state (pass --out to write one anyway)", current)
		}
	}
	if _, err := redirectEveryAnchor(ctx, store); err != nil {
		return fmt.Errorf("redirects: %w", err)
	}
	counts, err := store.Counts()
	if err != nil {
		return err
	}
	if err = store.Close(); err != nil {
		store = nil
		return fmt.Errorf("close %s: %w", target, err)
	}
	store = nil

	if swap {
		if err := swapIn(current, target, current+".bak-"+stamp, say); err != nil {
			return err
		}
		target = current
	}
	el := time.Since(started).Seconds()
	say("done: %d events (sequences %d to %d, %d skipped) into %d incidents (%d open, %d distinct events) in %.1fs, %.0f events/s; wrote %s",
		read, first, through, skipped, counts.Incidents, counts.Open, counts.Events, el, float64(read)/el, target)
	return nil
}

// redirectEveryAnchor gives every ID an incident of the state could have
// had a redirect to the incident that holds the alert it derives from,
// unless an incident has that ID: an incident's ID derives from the alert
// occurrence it starts with (correlate.IncidentID of its key and Anchor).
//
// The live correlator records a redirect for each incident that a merge
// removed between two of its batches. Those redirects depend on where its
// batches happened to end, which the stream does not record; a rebuild
// folds in other batches and would lose them, and an old ID a human
// bookmarked would no longer answer. Giving every possible ID answers
// every one the live correlator handed out, with the incident that now
// holds its alert, whatever the batches were.
//
// TODO: this belongs in correlate's refold, so that live and rebuilt
// state agree entry for entry; then drop it here.
func redirectEveryAnchor(_ context.Context, store *boltstore.Store) (int, error) {
	redirects := map[string]string{}
	err := store.IncidentAlerts(func(id, key string, occurrences []string) error {
		for _, occ := range occurrences {
			if other := correlate.IncidentID(key, occ); other != id {
				redirects[other] = id
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return store.AddRedirects(redirects)
}

// swapIn makes next the state file at current, keeping the one there as
// bak. Each step is a rename within the data directory; the directory is
// synced after them.
func swapIn(current, next, bak string, say func(string, ...any)) error {
	kept := false
	if err := os.Rename(current, bak); err == nil {
		kept = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("move %s aside: %w (the rebuilt state is in %s)", current, err, next)
	}
	if err := os.Rename(next, current); err != nil {
		return fmt.Errorf("move the rebuilt state into place: %w (it is in %s; the previous file is %s)", err, next, bak)
	}
	if d, err := os.Open(filepath.Dir(current)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	if kept {
		say("kept the previous state file as %s", bak)
	}
	return nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
