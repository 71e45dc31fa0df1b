// Command hindsight-load drives a running Hindsight over HTTP with
// realistic traffic and checks it on the way: Alertmanager notifications
// (alerts that fire, resolve and flap, repeats, late deliveries) and
// deploys, at a fixed rate or as fast as possible. Every event ID that got
// a 2xx must end up on exactly one timeline entry. It prints throughput,
// webhook and event-to-timeline latency percentiles, errors by status and
// the server's peak RSS, as a table or as JSON (--json). docs/load.md
// says how to run it and what each number means.
//
// # Caveats
//
// Visibility is measured two ways. Listing every incident every
// --poll-interval sees every event, but its resolution is that interval
// (or a listing's own duration, when longer), and the listing is load on
// the server too. Probing --probe-rate events a second one by one (GET
// /api/v1/events/{id} every --probe-interval) is precise to that
// interval and costs the server little, but samples. Deploys join a
// timeline only near an incident, so only alert events are checked for
// exactly-once. Peak RSS needs Linux's /proc and the server's PID.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "hindsight-load: stopping the load and waiting for visibility (interrupt again to abort)")
		close(stop)
		<-sig
		cancel()
	}()
	os.Exit(run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the program: 0 when the run passed, 1 when it failed or could
// not run, 2 for a mistake on the command line.
func run(ctx context.Context, stop <-chan struct{}, args []string, stdout, stderr io.Writer) int {
	o, asJSON, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "hindsight-load: %v\n", err)
		return 2
	}
	l, err := newLoader(o)
	if err != nil {
		fmt.Fprintf(stderr, "hindsight-load: %v\n", err)
		return 2
	}
	rep, err := l.run(ctx, stop)
	if err != nil {
		fmt.Fprintf(stderr, "hindsight-load: %v\n", err)
		return 1
	}
	if asJSON {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hindsight-load: %v\n", err)
		return 1
	}
	if len(rep.Failures) > 0 {
		return 1
	}
	return 0
}

const usage = `Usage: hindsight-load [flags]

Drives a running Hindsight with Alertmanager notifications and deploys,
then checks that every acknowledged alert event is on exactly one timeline
entry, and prints throughput, latencies, errors and the server's peak RSS.
Exit status: 0 passed, 1 failed, 2 bad flags.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (options, bool, error) {
	fs := flag.NewFlagSet("hindsight-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var (
		o       options
		pidFile string
		asJSON  bool
		seed    uint64
	)
	fs.StringVar(&o.server, "server", "http://127.0.0.1:9097", "Hindsight's base URL")
	// Not the flag's default: -h would print the secret.
	fs.StringVar(&o.token, "token", "", "bearer token for every request (default $HINDSIGHT_TOKEN)")
	fs.IntVar(&o.gen.AlertsPerNotification, "alerts-per-notification", 10, "alerts in each notification")
	fs.IntVar(&o.gen.Services, "services", 20, "services (one Alertmanager group, one correlation key each)")
	fs.IntVar(&o.gen.Instances, "instances", 5, "instances per service; each has 4 alert names")
	fs.Float64Var(&o.gen.FlapRate, "flap-rate", 0.1, "fraction of resolved alerts that fire again with a new startsAt (the others move to a new instance)")
	fs.Float64Var(&o.gen.RepeatRatio, "repeat-ratio", 0.2, "fraction of notifications that resend acknowledged alerts; each must come back as a duplicate")
	fs.Float64Var(&o.gen.OutOfOrder, "out-of-order", 0.05, "fraction of notifications held back until after the next one of their service (resolved before firing)")
	fs.IntVar(&o.gen.DeployEvery, "deploy-every", 20, "one deploy per this many notifications (0: no deploys)")
	fs.Uint64Var(&seed, "seed", 0, "random seed (0: from the clock); the same seed gives the same traffic shape")
	fs.Float64Var(&o.rate, "rate", 0, "notifications per second (0: as fast as the connections allow)")
	fs.DurationVar(&o.duration, "duration", 0, "how long to send (default 30s unless --events is set)")
	fs.IntVar(&o.events, "events", 0, "stop after this many new events (alerts of fresh notifications and deploys)")
	fs.IntVar(&o.connections, "connections", 32, "concurrent keep-alive connections sending webhooks")
	fs.DurationVar(&o.settle, "settle", 60*time.Second, "how long to wait after the load for every event to be visible")
	fs.DurationVar(&o.pollInterval, "poll-interval", 200*time.Millisecond, "how often to list the incidents to see events arrive")
	fs.Float64Var(&o.probeRate, "probe-rate", 20, "alert events a second timed one by one to their timeline with GET /api/v1/events/{id} (0: none)")
	fs.DurationVar(&o.probeInterval, "probe-interval", 5*time.Millisecond, "how often a probe asks for its event")
	fs.IntVar(&o.pid, "pid", 0, "PID of the server, to sample its RSS from /proc/PID/status")
	fs.StringVar(&pidFile, "pid-file", "", "file holding the PID of the server (instead of --pid)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	if fs.NArg() > 0 {
		return o, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.token == "" {
		o.token = os.Getenv("HINDSIGHT_TOKEN")
	}
	if !*quiet {
		o.progress = stderr
	}
	if pidFile != "" {
		if o.pid != 0 {
			return o, false, errors.New("--pid and --pid-file: give one")
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return o, false, fmt.Errorf("--pid-file: %w", err)
		}
		o.pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || o.pid <= 0 {
			return o, false, fmt.Errorf("--pid-file %s: %q is not a PID", pidFile, strings.TrimSpace(string(b)))
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	o.gen.Seed = seed
	if o.duration == 0 && o.events == 0 {
		o.duration = 30 * time.Second
	}
	return o, asJSON, o.validate()
}

func (o options) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"flap-rate", o.gen.FlapRate}, {"repeat-ratio", o.gen.RepeatRatio}, {"out-of-order", o.gen.OutOfOrder}} {
		if f.v < 0 || f.v > 1 {
			return fmt.Errorf("--%s %g: want a fraction from 0 to 1", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"alerts-per-notification", o.gen.AlertsPerNotification}, {"services", o.gen.Services}, {"instances", o.gen.Instances}, {"connections", o.connections}} {
		if f.v < 1 {
			return fmt.Errorf("--%s %d: want 1 or more", f.name, f.v)
		}
	}
	if n := o.gen.seriesPerService(); o.gen.AlertsPerNotification > n {
		return fmt.Errorf("--alerts-per-notification %d: a service has only %d alert series (--instances %d × %d alert names); raise --instances",
			o.gen.AlertsPerNotification, n, o.gen.Instances, len(alertNames))
	}
	switch {
	case o.gen.DeployEvery < 0:
		return fmt.Errorf("--deploy-every %d: want 0 (no deploys) or more", o.gen.DeployEvery)
	case o.rate < 0:
		return fmt.Errorf("--rate %g: want 0 (as fast as possible) or more", o.rate)
	case o.duration < 0, o.events < 0, o.settle < 0:
		return errors.New("--duration, --events and --settle cannot be negative")
	case o.pollInterval <= 0:
		return fmt.Errorf("--poll-interval %s: want more than 0", o.pollInterval)
	case o.probeRate != 0 && (o.probeRate < 0.01 || o.probeRate > 10000):
		return fmt.Errorf("--probe-rate %g: want 0 (no probes) or from 0.01 to 10000 a second", o.probeRate)
	case o.probeRate > 0 && o.probeInterval <= 0:
		return fmt.Errorf("--probe-interval %s: want more than 0", o.probeInterval)
	case o.pid < 0:
		return fmt.Errorf("--pid %d: not a PID", o.pid)
	}
	return nil
}
