package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/natsbus"
)

// replayOptions are replay's flags.
type replayOptions struct {
	candidate string // --config: the rules to try
	current   string // --current: serve's config ("" the defaults)
	since     time.Duration
	json      bool
	dataDir   string
	natsURL   string
	keep      string // "" removes the scratch stores at the end
	batch     int
	// progressEvery is how often progress is printed.
	progressEvery time.Duration
	// now is the time --since counts back from.
	now func() time.Time
}

const replayUsage = `Usage: hindsight replay --config candidate.yml [flags]

Folds the stored event stream through the current correlation settings
(--current, serve's config) and through the candidate ones (--config),
each into its own scratch state file, and prints what the candidate
would change: incidents merged, split, newly opened, no longer opened,
changed, and suspected changes that move. The live state file is never
touched, and replay runs while serve does: serve's embedded nats-server
is read through the address it leaves in <data-dir>/nats.url.

The fold is the one serve runs (the same correlator, batch by batch), and
it is deterministic: the same stream gives the same report, byte for
byte.

--since keeps the alert occurrences that started within it (a firing
alert and its resolution are kept or left out together), the notes
within it, and the deploys within it plus the longest change_lookback
and related_window of both configs, so incidents at the start of the
window still see the deploys before them. It counts back from now.

Exit status: 0 when the replay ran, whether or not anything differs; 1
on an error; 2 on a usage error.

`

func replayCmd(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("replay", stderr)
	o := replayOptions{progressEvery: 2 * time.Second, now: time.Now}
	var since string
	flags.StringVar(&o.candidate, "config", "", "YAML config holding the candidate correlation settings (required)")
	flags.StringVar(&o.current, "current", "", "serve's YAML config, whose correlation settings are compared against; empty: the config serve runs with on --data-dir (it leaves its path in "+app.ConfigPathFile+"), else the defaults")
	flags.StringVar(&since, "since", "", "replay only the events of this last span: a Go duration (72h) or days (30d); empty: the whole stream")
	flags.BoolVar(&o.json, "json", false, "print the report as JSON")
	flags.StringVar(&o.dataDir, "data-dir", "./hindsight-data", "data directory serve uses: its stream is read (through serve's nats-server while serve runs), never changed, and its state file is not touched")
	flags.StringVar(&o.natsURL, "nats-url", "", "URL of the external NATS serve uses; empty reads --data-dir's stream")
	flags.StringVar(&o.keep, "keep", "", "keep the two scratch state files (current.db, candidate.db) in this directory instead of removing them")
	flags.IntVar(&o.batch, "batch", 10000, "events folded per transaction: more is faster and takes more memory")
	flags.Usage = func() {
		fmt.Fprint(stderr, replayUsage)
		flags.PrintDefaults()
	}
	// --config names the candidate here, while HINDSIGHT_CONFIG names
	// serve's config: it is --current's default, never --config's.
	if err := parseEnv(flags, args, map[string]string{"config": "", "current": "HINDSIGHT_CONFIG"}); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Errorf("replay takes no arguments, got %q", flags.Args())}
	}
	if o.candidate == "" {
		return usageError{errors.New("replay needs --config: the YAML file with the candidate correlation settings")}
	}
	if o.batch <= 0 {
		return usageError{fmt.Errorf("--batch %d: want a positive number", o.batch)}
	}
	if since != "" {
		d, err := parseSince(since)
		if err != nil {
			return usageError{err}
		}
		o.since = d
	}
	if o.keep != "" && o.natsURL == "" {
		if same, _ := sameDir(o.keep, o.dataDir); same {
			return usageError{fmt.Errorf("--keep %s is the data directory: replay never writes there; choose another directory", o.keep)}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return replay(ctx, o, stdout, stderr)
}

// parseSince reads a Go duration or a whole number of days ("30d").
func parseSince(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || int64(days) > math.MaxInt64/int64(24*time.Hour) {
			return 0, fmt.Errorf("--since %q: want a Go duration (72h, 90m) or days (30d)", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("--since %q: want a Go duration (72h, 90m) or days (30d)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--since %q: want a positive span", s)
	}
	return d, nil
}

func sameDir(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// replay folds the stream under both configurations into scratch stores
// and writes the difference to stdout.
func replay(ctx context.Context, o replayOptions, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	stderr = &syncWriter{w: stderr} // NATS callbacks log from their own goroutines
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	say := func(format string, args ...any) { fmt.Fprintf(stderr, "replay: "+format+"\n", args...) }

	if o.current == "" && o.natsURL == "" {
		// Serve leaves the path of its config while it runs: compare
		// with what it folds by, not with the defaults.
		if b, err := os.ReadFile(filepath.Join(o.dataDir, app.ConfigPathFile)); err == nil {
			if o.current = strings.TrimSpace(string(b)); o.current != "" {
				say("current settings: serve's config %s (--current to compare with another)", o.current)
			}
		} else {
			say("current settings: the defaults (serve is not running on %s; pass --current with serve's config to compare with it)", o.dataDir)
		}
	}
	cur, err := loadCorrelation(o.current)
	if err != nil {
		return fmt.Errorf("current settings (--current): %w", err)
	}
	cand, err := loadCorrelation(o.candidate)
	if err != nil {
		return fmt.Errorf("candidate settings (--config): %w", err)
	}

	src, release, err := replaySource(o, say)
	if err != nil {
		return err
	}
	defer release()
	bus, closeStream, err := openStream(ctx, src, log)
	if err != nil {
		return err
	}
	defer closeStream()

	scratch := o.keep
	if scratch == "" {
		if scratch, err = os.MkdirTemp("", "hindsight-replay-"); err != nil {
			return fmt.Errorf("scratch directory: %w", err)
		}
		defer os.RemoveAll(scratch)
	} else if err := os.MkdirAll(scratch, 0o750); err != nil {
		return fmt.Errorf("--keep: %w", err)
	}
	sides := []*replaySide{{name: "current", cfg: cur}, {name: "candidate", cfg: cand}}
	var cs []*correlate.Correlator
	for _, s := range sides {
		path := filepath.Join(scratch, s.name+".db")
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s exists: replay writes new scratch files; remove it or choose another --keep", path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if s.store, err = boltstore.Open(path); err != nil {
			return err
		}
		defer s.store.Close()
		c, err := correlate.New(s.cfg, s.store, log.With("component", "correlate", "rules", s.name), nil)
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}

	fo := foldOptions{batch: o.batch, progressEvery: o.progressEvery, say: say, log: log,
		into: "current.db and candidate.db in " + scratch}
	if o.since > 0 {
		var cutoff time.Time
		cutoff, fo.keep = sinceFilter(o.now(), o.since, cur, cand)
		say("keeping the events since %s (--since %s)", cutoff.Format(time.RFC3339), hindsight.FormatDuration(o.since))
	}
	st, err := foldStream(ctx, bus, fo, cs...)
	if err != nil {
		return fmt.Errorf("replay stopped after sequence %d: %w", st.through, err)
	}
	closeStream() // done with NATS: let serve's server be
	if st.first == 0 {
		say("the stream holds no events")
	}

	for _, s := range sides {
		if s.incidents, err = s.read(); err != nil {
			return err
		}
	}
	report := correlate.Diff(sides[0].incidents, sides[1].incidents)
	note := ""
	if st.dropped > 0 {
		note = fmt.Sprintf(", %d before --since left out", st.dropped)
	}
	say("folded %d events (sequences %d to %d%s, %d skipped) under both settings in %.1fs", st.read, st.first, st.through, note, st.skipped, time.Since(started).Seconds())
	if o.keep != "" {
		say("kept the scratch state files %s and %s", sides[0].store.Path(), sides[1].store.Path())
	}
	if o.json {
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(data, '\n'))
		return err
	}
	return report.WriteText(stdout)
}

// loadCorrelation reads the correlation settings of a config file (""
// the defaults).
func loadCorrelation(path string) (correlate.Config, error) {
	cfg, err := app.LoadConfig(path)
	if err != nil {
		return correlate.Config{}, err
	}
	cc, err := cfg.CorrelateConfig()
	if err != nil {
		return correlate.Config{}, fmt.Errorf("config %s: correlation: %w", path, err)
	}
	return cc, nil
}

// replaySource finds the stream. With --nats-url, there. Else in the data
// directory: through serve's nats-server while serve runs (its LOCK is
// held and nats.url says where it listens), or with an embedded
// nats-server of our own, holding the LOCK so that serve does not start
// a second one on the same store meanwhile. Nothing in the data
// directory is written; a LOCK that does not exist is not created.
func replaySource(o replayOptions, say func(string, ...any)) (streamSource, func(), error) {
	none := func() {}
	if o.natsURL != "" {
		return streamSource{url: o.natsURL, name: "hindsight-replay"}, none, nil
	}
	if _, err := os.Stat(o.dataDir); err != nil {
		return streamSource{}, nil, fmt.Errorf("data directory: %w", err)
	}
	lockFile := filepath.Join(o.dataDir, "LOCK") // app's lockDataDir
	release, err := boltstore.Lock(lockFile)
	if errors.Is(err, boltstore.ErrLocked) {
		urlFile := filepath.Join(o.dataDir, natsbus.URLFile)
		addr, token, err := natsbus.ReadURLFile(urlFile)
		if errors.Is(err, fs.ErrNotExist) {
			return streamSource{}, nil, fmt.Errorf("%s is in use and %s does not exist, so replay cannot read the stream beside it: "+
				"if serve uses an external NATS, pass its --nats-url; if it is a Hindsight older than replay, restart it; "+
				"if it is a rebuild, wait for it to finish", lockFile, urlFile)
		}
		if err != nil {
			return streamSource{}, nil, fmt.Errorf("serve runs on %s: %w", o.dataDir, err)
		}
		say("serve runs on %s: reading the stream through its nats-server at %s", o.dataDir, addr)
		return streamSource{url: addr, token: token, name: "hindsight-replay"}, none, nil
	}
	if err != nil {
		return streamSource{}, nil, err
	}
	return streamSource{dataDir: o.dataDir, name: "hindsight-replay"}, func() { release() }, nil
}

// sinceFilter returns the start of the span --since keeps, and which
// events to fold: alert occurrences that started in it, deploys from the
// longest lookback (and related window) of either config before it, and
// every other event whose time lies in it. Ticks are kept: they only
// move event time forward.
func sinceFilter(now time.Time, since time.Duration, cfgs ...correlate.Config) (time.Time, func(*hindsight.Event) bool) {
	cutoff := now.Add(-since).UTC()
	var lookback time.Duration
	for _, c := range cfgs {
		lookback = max(lookback, c.ChangeLookback+c.RelatedWindow)
		for _, r := range c.Rules {
			lookback = max(lookback, r.ChangeLookback+c.RelatedWindow)
		}
	}
	deploysFrom := cutoff.Add(-lookback)
	return cutoff, func(e *hindsight.Event) bool {
		switch {
		case e.Kind == hindsight.KindTick:
			return true
		case e.Kind.IsDeploy():
			return !e.Time.Before(deploysFrom)
		case e.Kind.IsAlert() && e.Alert != nil:
			return !e.Alert.StartsAt.Before(cutoff)
		}
		return !e.Time.Before(cutoff)
	}
}

// replaySide is one configuration's scratch store and incidents.
type replaySide struct {
	name      string
	cfg       correlate.Config
	store     *boltstore.Store
	incidents []hindsight.Incident
}

// Every start the store's keys can hold: big-endian Unix nanoseconds.
var (
	firstStart = time.Unix(0, math.MinInt64)
	lastStart  = time.Unix(0, math.MaxInt64)
)

// read returns every incident of the store, held back ones included,
// enriched as serve would serve them.
func (s *replaySide) read() ([]hindsight.Incident, error) {
	incs, err := s.store.StartedBetween(firstStart, lastStart)
	if err != nil {
		return nil, fmt.Errorf("read the %s settings' incidents: %w", s.name, err)
	}
	for i := range incs {
		if err := s.cfg.EnrichFrom(s.store, &incs[i]); err != nil {
			return nil, fmt.Errorf("enrich under the %s settings: %w", s.name, err)
		}
	}
	return incs, nil
}
