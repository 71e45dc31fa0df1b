// Command hindsight records outages as they happen and drafts their
// postmortems. `hindsight serve` runs the service; `hindsight deploy` and
// `hindsight postmortem` talk to a running one; `hindsight rebuild`
// refolds the bbolt state from the stream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hindsight-sre/hindsight/app"
)

const usage = `Hindsight captures the timeline of an outage and drafts its postmortem.

Usage:
  hindsight serve [flags]                 run the service (embedded NATS by default)
  hindsight deploy --service S [flags]    record a deploy from a CI pipeline
  hindsight postmortem [flags] ID         print an incident's postmortem draft
  hindsight report [--since 30d] [flags]  time to detect and resolve per service and severity
  hindsight rebuild [flags]               refold the state file from the event stream
  hindsight replay --config FILE [flags]  what candidate correlation rules would change
  hindsight rules check FILE              check a config file's correlation rules and show them
  hindsight template [check FILE]         print the built-in postmortem template, or check yours
  hindsight version

Run 'hindsight <command> -h' for a command's flags. Every flag can also be
set with an environment variable: --data-dir is HINDSIGHT_DATA_DIR.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(rest, stderr)
	case "deploy":
		err = deployCmd(rest, stdout, stderr)
	case "postmortem":
		err = postmortemCmd(rest, stdout, stderr)
	case "rebuild":
		err = rebuildCmd(rest, stderr)
	case "replay":
		err = replayCmd(rest, stdout, stderr)
	case "rules":
		err = rulesCmd(rest, stdout, stderr)
	case "report":
		err = reportCmd(rest, stdout, stderr)
	case "template":
		err = templateCmd(rest, stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "hindsight", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "hindsight: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "hindsight: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "hindsight: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ error }

// newFlags returns a flag set whose flags can come from HINDSIGHT_* variables.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, taking every flag not given on the command line
// from its environment variable (--data-dir: HINDSIGHT_DATA_DIR).
func parse(fs *flag.FlagSet, args []string) error { return parseEnv(fs, args, nil) }

// parseEnv is parse where env renames some flags' variables: "" for a
// flag no variable sets (replay's --config names the candidate, while
// HINDSIGHT_CONFIG is serve's config and sets its --current instead).
func parseEnv(fs *flag.FlagSet, args []string, env map[string]string) error {
	name := func(flag string) string {
		if v, ok := env[flag]; ok {
			return v
		}
		return envName(flag)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if n := name(f.Name); n != "" {
			f.Usage += fmt.Sprintf(" ($%s)", n)
		}
	})
	// Flags may follow arguments too (hindsight postmortem ID --server URL).
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	_ = fs.Parse(append([]string{"--"}, positional...)) // leaves them in fs.Args()
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		n := name(f.Name)
		if v, ok := os.LookupEnv(n); ok && n != "" && !set[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					e = errors.New("want true or false")
				}
				err = usageError{fmt.Errorf("%s=%q: %v", n, v, e)}
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "HINDSIGHT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func serve(args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var o app.Options
	var roles, logFormat, logLevel string
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:9097", "address to serve HTTP on")
	fs.StringVar(&o.DataDir, "data-dir", "./hindsight-data", "directory for the embedded JetStream store and the bbolt state")
	fs.StringVar(&o.NatsURL, "nats-url", "", "URL of an external NATS (2.10+, JetStream enabled); empty runs an embedded nats-server")
	fs.StringVar(&roles, "roles", strings.Join(app.AllRoles, ","), "roles this process runs: ingest, correlate, draft")
	fs.StringVar(&o.ConfigFile, "config", "", "YAML file with correlation, auth, limits and stream settings")
	fs.StringVar(&o.TemplateFile, "template", "", "Go text/template `file` replacing the built-in postmortem template (print it with: hindsight template)")
	fs.BoolVar(&o.Insecure, "insecure", false, "allow listening beyond loopback without auth on every endpoint")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("serve takes no arguments, got %q", fs.Args())}
	}
	for _, r := range strings.Split(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			o.Roles = append(o.Roles, r)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)}
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		o.Logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		o.Logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", logFormat)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, o)
}
