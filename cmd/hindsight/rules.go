package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/hindsight-sre/hindsight/app"
	"github.com/hindsight-sre/hindsight/correlate"
)

const rulesUsage = `Usage: hindsight rules check FILE

Checks the correlation rules of a --config file and prints what each rule
does, in the order they are tried, then the default rule. Exits 1 when the
file cannot work, naming the line and the setting.
`

func rulesCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{fmt.Errorf("rules needs a subcommand: hindsight rules check FILE")}
	}
	switch args[0] {
	case "check":
	case "-h", "--help", "help":
		fmt.Fprint(stderr, rulesUsage)
		return nil
	default:
		return usageError{fmt.Errorf("rules: unknown subcommand %q: want check", args[0])}
	}
	fs := newFlags("rules check", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rulesUsage) }
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		return usageError{fmt.Errorf("rules check takes one config file, got %d arguments", fs.NArg())}
	}
	file := fs.Arg(0)
	cfg, err := app.LoadConfig(file)
	if err != nil {
		return err
	}
	cc, err := cfg.CorrelateConfig()
	if err != nil {
		return fmt.Errorf("config %s: %w", file, err)
	}
	return printRules(stdout, file, cc)
}

// printRules writes what each rule does, in order, then the default rule.
func printRules(w io.Writer, file string, c correlate.Config) error {
	tw := &errWriter{w: w}
	n := fmt.Sprintf("%d rules", len(c.Rules))
	if len(c.Rules) == 1 {
		n = "1 rule"
	}
	fmt.Fprintf(tw, "%s: ok, %s. An alert goes to the first rule whose match selects it, else to the default rule.\n", file, n)
	for i, r := range c.Rules {
		fmt.Fprintf(tw, "\nrule %d: %s\n", i+1, r.Name)
		if len(r.Match) > 0 {
			fmt.Fprintf(tw, "  match            %s\n", matcherList(r.Match))
		} else {
			after := "the default rule never applies"
			if i < len(c.Rules)-1 {
				after = "the rules after it and the default rule never apply"
			}
			fmt.Fprintf(tw, "  match            every alert: %s\n", after)
		}
		if len(r.Ignore) > 0 {
			fmt.Fprintf(tw, "  ignore           %s (stored, but join no incident)\n", matcherList(r.Ignore))
		}
		if len(r.Key) > 0 {
			fmt.Fprintf(tw, "  key              %s/%s\n", r.Name, strings.Join(keyParts(r.Key), ","))
		} else {
			fmt.Fprintf(tw, "  key              %s/<the first present of %s, else the group key>\n", r.Name, strings.Join(c.KeyLabels, ", "))
		}
		fmt.Fprintf(tw, "  open_after       %s\n", openAfter(r.OpenAfter))
		var set []string
		for _, s := range []struct {
			name string
			on   bool
			val  string
		}{
			{"reopen_window", r.ReopenWindow != 0, duration(r.ReopenWindow)},
			{"change_lookback", r.ChangeLookback != 0, duration(r.ChangeLookback)},
			{"severity_label", r.SeverityLabel != "", r.SeverityLabel},
			{"team_label", r.TeamLabel != "", r.TeamLabel},
			{"deploy_labels", r.DeployLabels != nil, deployLabels(c.DeployLabels, r.DeployLabels)},
			{"shared_labels", r.SharedLabels != nil, list(r.SharedLabels)},
		} {
			if s.on {
				fmt.Fprintf(tw, "  %-17s%s\n", s.name, s.val)
				set = append(set, s.name)
			}
		}
		if len(set) < 6 {
			fmt.Fprintf(tw, "  other settings   the default rule's\n")
		}
	}
	fmt.Fprintf(tw, "\ndefault rule: alerts no rule matches\n")
	fmt.Fprintf(tw, "  key              the first present of %s, else the group key\n", strings.Join(c.KeyLabels, ", "))
	fmt.Fprintf(tw, "  open_after       %s\n", openAfter(c.OpenAfter))
	fmt.Fprintf(tw, "  reopen_window    %s\n", duration(c.ReopenWindow))
	fmt.Fprintf(tw, "  change_lookback  %s\n", duration(c.ChangeLookback))
	fmt.Fprintf(tw, "  severity_label   %s\n", c.SeverityLabel)
	fmt.Fprintf(tw, "  team_label       %s\n", c.TeamLabel)
	fmt.Fprintf(tw, "  deploy_labels    %s\n", deployLabels(c.DeployLabels, nil))
	fmt.Fprintf(tw, "  shared_labels    %s\n", list(c.SharedLabels))
	fmt.Fprintf(tw, "  related_window   %s (all rules)\n", duration(c.RelatedWindow))
	return tw.err
}

// errWriter keeps the first error of a series of writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func matcherList(ms []*labels.Matcher) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	return strings.Join(s, ", ")
}

// keyParts shows how a rule's key is formed: label=<value>, ...
func keyParts(key []string) []string {
	s := make([]string, len(key))
	for i, l := range key {
		s[i] = l + "=<" + l + ">"
	}
	return s
}

func openAfter(o correlate.OpenAfter) string {
	if o.Alerts <= 1 && o.For <= 0 {
		return "none: opens at the first alert"
	}
	var when []string
	if o.Alerts > 1 {
		when = append(when, fmt.Sprintf("it has %d alerts", o.Alerts))
	}
	if o.For > 0 {
		when = append(when, "one of its alerts has fired for "+duration(o.For))
	}
	return fmt.Sprintf("opens once %s; pending until then, suppressed if all resolve first", strings.Join(when, " or "))
}

// deployLabels shows the deploy field or label -> alert label mapping
// that applies: the default's, then the config's, then the rule's.
func deployLabels(config, rule map[string]string) string {
	m := map[string]string{"service": "service", "environment": "env"}
	maps.Copy(m, config)
	maps.Copy(m, rule)
	var s []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s = append(s, k+": "+m[k])
	}
	return "{" + strings.Join(s, ", ") + "}"
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// duration writes d as the file would: 1h, 1h30m, 90s.
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
