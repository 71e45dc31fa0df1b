// Command benchreport turns the results of several ingestbench rounds
// (ingestbench --json, one file per target and round) into medians: it
// prints a table and writes the same as one JSON document.
//
// Usage:
//
//	benchreport --out results/2026-12-02T0530Z.json --meta nproc=2 round1/*.json round2/*.json ...
//
// Each file's "label" names its target and "round" (added by run.sh)
// its round. Ratios are taken within a round, target against the bare
// decoder (label "bare") and against Alertmanager (label
// "alertmanager") of the same round, and then the median of those is
// reported: the machine's drift between rounds cancels out.
//
// # Caveats
//
// With an even number of rounds the median is the mean of the middle
// two. A target missing from a round has no ratio for that round.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// result is what benchreport reads of an ingestbench result.
type result struct {
	Label             string         `json:"label"`
	Round             int            `json:"round"`
	AlertsPerSecond   float64        `json:"alerts_per_second"`
	CPUMicrosPerAlert float64        `json:"cpu_us_per_alert"`
	TargetCores       float64        `json:"target_cores"`
	ClientCores       float64        `json:"client_cores"`
	P50Ms             float64        `json:"p50_ms"`
	P99Ms             float64        `json:"p99_ms"`
	Errors            int            `json:"errors"`
	Requests          int            `json:"requests"`
	ByStatus          map[string]int `json:"by_status"`
}

// Row is one target's medians.
type Row struct {
	Label  string `json:"label"`
	Rounds int    `json:"rounds"`
	// Medians over rounds.
	AlertsPerSecond   float64 `json:"alerts_per_second"`
	RatioToBare       float64 `json:"ratio_to_bare,omitempty"`
	RatioToAM         float64 `json:"ratio_to_alertmanager,omitempty"`
	CPUMicrosPerAlert float64 `json:"cpu_us_per_alert,omitempty"`
	TargetCores       float64 `json:"target_cores,omitempty"`
	ClientCores       float64 `json:"client_cores"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
	// Errors is the sum over rounds.
	Errors int `json:"errors"`
	// PerRound are the alerts/s of each round, in order.
	PerRound []float64 `json:"alerts_per_second_by_round"`
}

// Report is the JSON document benchreport writes.
type Report struct {
	Meta    map[string]string `json:"meta"`
	Rows    []Row             `json:"medians"`
	Results []json.RawMessage `json:"results"`
}

type metaFlag map[string]string

func (m metaFlag) String() string { return fmt.Sprint(map[string]string(m)) }

func (m metaFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", s)
	}
	m[k] = v
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the report as JSON to this file")
	meta := metaFlag{}
	fs.Var(meta, "meta", "KEY=VALUE to record in the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var (
		results []result
		raws    []json.RawMessage
	)
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "benchreport: %v\n", err)
			return 1
		}
		var r result
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(stderr, "benchreport: %s: %v\n", path, err)
			return 1
		}
		results = append(results, r)
		raws = append(raws, json.RawMessage(b))
	}
	if len(results) == 0 {
		fmt.Fprintln(stderr, "benchreport: no result files")
		return 2
	}
	rep := Report{Meta: meta, Rows: medians(results), Results: raws}
	printTable(stdout, rep.Rows)
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "benchreport: %v\n", err)
			return 1
		}
	}
	return 0
}

// medians computes one row per label, in the order labels first appear.
func medians(rs []result) []Row {
	type key struct {
		label string
		round int
	}
	byKey := map[key]result{}
	var labels []string
	for _, r := range rs {
		if !slices.Contains(labels, r.Label) {
			labels = append(labels, r.Label)
		}
		byKey[key{r.Label, r.Round}] = r
	}
	var rows []Row
	for _, l := range labels {
		var (
			row                               = Row{Label: l}
			aps, toBare, toAM, cpu, cores, cl []float64
			p50, p99                          []float64
		)
		for _, r := range rs {
			if r.Label != l {
				continue
			}
			row.Rounds++
			row.Errors += r.Errors
			row.PerRound = append(row.PerRound, round1(r.AlertsPerSecond))
			aps = append(aps, r.AlertsPerSecond)
			if r.CPUMicrosPerAlert > 0 {
				cpu = append(cpu, r.CPUMicrosPerAlert)
				cores = append(cores, r.TargetCores)
			}
			cl = append(cl, r.ClientCores)
			p50, p99 = append(p50, r.P50Ms), append(p99, r.P99Ms)
			if b, ok := byKey[key{"bare", r.Round}]; ok && b.AlertsPerSecond > 0 {
				toBare = append(toBare, r.AlertsPerSecond/b.AlertsPerSecond)
			}
			if a, ok := byKey[key{"alertmanager", r.Round}]; ok && a.AlertsPerSecond > 0 {
				toAM = append(toAM, r.AlertsPerSecond/a.AlertsPerSecond)
			}
		}
		row.AlertsPerSecond = round1(median(aps))
		row.RatioToBare = round3(median(toBare))
		row.RatioToAM = round3(median(toAM))
		row.CPUMicrosPerAlert = round1(median(cpu))
		row.TargetCores = round3(median(cores))
		row.ClientCores = round3(median(cl))
		row.P50Ms, row.P99Ms = round3(median(p50)), round3(median(p99))
		rows = append(rows, row)
	}
	return rows
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func printTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trounds\talerts/s\t× bare\t× alertmanager\tCPU µs/alert\ttarget cores\tclient cores\tp50 ms\tp99 ms\terrors\t")
	opt := func(f float64, format string) string {
		if f == 0 {
			return "-"
		}
		return fmt.Sprintf(format, f)
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t%.1f\t%d\t\n",
			r.Label, r.Rounds, r.AlertsPerSecond, opt(r.RatioToBare, "%.3f"), opt(r.RatioToAM, "%.3f"),
			opt(r.CPUMicrosPerAlert, "%.1f"), opt(r.TargetCores, "%.2f"), r.ClientCores, r.P50Ms, r.P99Ms, r.Errors)
	}
	_ = tw.Flush()
}
