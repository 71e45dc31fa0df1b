package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/boltstore"
)

// reportOptions are report's flags.
type reportOptions struct {
	since, until string
	json         bool
	dataDir      string
	// remote: ask the server c names instead of reading dataDir.
	remote bool
	c      client
}

func reportCmd(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("report", stderr)
	var o reportOptions
	flags.StringVar(&o.since, "since", "30d", "report the incidents that started at or after this: a duration back from now (30d, 2w, 12h, 90m) or an RFC 3339 time or a date")
	flags.StringVar(&o.until, "until", "", "and at or before this, in the same forms (default: now)")
	flags.BoolVar(&o.json, "json", false, "print the report as JSON, the same as GET /api/v1/report")
	flags.StringVar(&o.dataDir, "data-dir", "./hindsight-data", "data directory whose "+boltstore.FileName+" is read (serve must be stopped; else use --server)")
	o.c.flags(flags, "token", "bearer token for the API (with --server)")
	// Unlike deploy and postmortem, report reads the data directory
	// unless it is given a server.
	o.c.server = ""
	srv := flags.Lookup("server")
	srv.DefValue, srv.Usage = "", "ask the Hindsight at this base URL (like http://127.0.0.1:9097) instead of reading --data-dir: the way while serve runs"
	flags.Usage = func() {
		fmt.Fprint(stderr, `Usage: hindsight report [--since 30d] [--until T] [--json] [--data-dir DIR | --server URL]

Prints time to detect and time to resolve per service and severity: the
median, the 90th percentile and how many incidents each is over. It counts
the incidents that opened (status open or resolved; not pending or
suppressed) and started in the window. Start, time to detect and time to
resolve are the incident's own, so an impact start a human corrected counts
as the start. An incident whose time to detect is unknown (backfilled), or
that is still open, counts as an incident but not in that column's numbers.

Percentiles are nearest-rank: of the n known values in ascending order, the
p-th percentile is the value at rank ceil(p/100 × n). So each is one of the
incidents' own durations, the median of an even count is the lower middle
one, and the p90 of fewer than ten incidents is the longest.

By default it reads the state file in --data-dir, which bbolt lets only one
process open: while `+"`hindsight serve`"+` runs on that directory, ask it
instead with --server (GET /api/v1/report, the same numbers).

`)
		flags.PrintDefaults()
	}
	if err := parse(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Errorf("report takes no arguments, got %q", flags.Args())}
	}
	o.remote = o.c.server != ""
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := report(ctx, o, time.Now())
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printReport(stdout, rep)
}

// report reads the report from the server or the state file.
func report(ctx context.Context, o reportOptions, now time.Time) (api.Report, error) {
	// Checked here too, so that a mistake reads the same either way and
	// is a usage error.
	since, until, err := api.ReportWindow(o.since, o.until, now)
	if err != nil {
		return api.Report{}, usageError{fmt.Errorf("--%w", err)}
	}
	if o.remote {
		q := url.Values{"since": {o.since}}
		if o.until != "" {
			q.Set("until", o.until)
		}
		body, err := o.c.do(ctx, "GET", "/api/v1/report?"+q.Encode(), "", nil)
		if err != nil {
			return api.Report{}, err
		}
		var rep api.Report
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&rep); err != nil {
			return api.Report{}, fmt.Errorf("decode the report from %s: %w", o.c.server, err)
		}
		return rep, nil
	}
	store, err := openForReport(o.dataDir)
	if err != nil {
		return api.Report{}, err
	}
	defer store.Close()
	return api.ReadReport(store, since, until)
}

// openForReport opens the data directory's state file, or says why not:
// not there, or held by serve (bbolt's lock), in which case --server is
// the way.
func openForReport(dataDir string) (*boltstore.Store, error) {
	path := filepath.Join(dataDir, boltstore.FileName)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil, fmt.Errorf("no state file at %s: is --data-dir (or HINDSIGHT_DATA_DIR) the directory serve runs with?", path)
	}
	if err != nil {
		return nil, err
	}
	// Ask without waiting: Open would wait for the lock for 5 seconds.
	// Serve holds the data directory's LOCK (app's lockDataDir), and the
	// state file's bbolt lock with the correlate role.
	for _, p := range []string{filepath.Join(dataDir, "LOCK"), path} {
		release, err := boltstore.Lock(p)
		if errors.Is(err, boltstore.ErrLocked) {
			return nil, fmt.Errorf("%s is in use, most likely by `hindsight serve` (bbolt lets one process open the state file): ask the running server instead, with `hindsight report --server http://127.0.0.1:9097` (its --listen address, and --token or --user/--password if its API needs them)", p)
		}
		if err != nil {
			return nil, err
		}
		if err := release(); err != nil {
			return nil, err
		}
	}
	return boltstore.Open(path)
}

// printReport prints the report as an aligned table.
func printReport(w io.Writer, rep api.Report) error {
	const day = "2006-01-02 15:04 UTC"
	fmt.Fprintf(w, "Incidents that started from %s to %s (%s)\n", rep.Since.UTC().Format(day), rep.Until.UTC().Format(day),
		hindsight.FormatDuration(rep.Until.Sub(rep.Since)))
	if len(rep.Groups) == 0 {
		_, err := fmt.Fprintln(w, "No incidents opened in that time.")
		return err
	}
	fmt.Fprintln(w, "TTD: time to detect; TTR: time to resolve. Median and p90 are nearest-rank over N, the incidents whose time is known.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSEVERITY\tINCIDENTS\tTTD MEDIAN\tTTD P90\tTTD N\tTTR MEDIAN\tTTR P90\tTTR N")
	for _, g := range rep.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\n", cell(orNone(g.Service)), cell(orNone(g.Severity)), g.Incidents,
			seconds(g.TimeToDetect.Median), seconds(g.TimeToDetect.P90), g.TimeToDetect.Count,
			seconds(g.TimeToResolve.Median), seconds(g.TimeToResolve.P90), g.TimeToResolve.Count)
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// seconds renders seconds like 1h13m, and "-" for none known.
func seconds(s *hindsight.Seconds) string {
	if s == nil {
		return "-"
	}
	return hindsight.FormatDuration(s.Duration())
}

// cell keeps a label value from breaking the table: alert labels are
// untrusted, and may hold tabs or newlines.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
