package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Percentiles
	}{
		{"none", nil, Percentiles{}},
		{"one", ms(7), Percentiles{N: 1, P50: 7, P90: 7, P99: 7, Max: 7}},
		{"two", ms(9, 1), Percentiles{N: 2, P50: 1, P90: 9, P99: 9, Max: 9}},
		{"ten", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), Percentiles{N: 10, P50: 5, P90: 9, P99: 10, Max: 10}},
		{"hundred", ms(hundred...), Percentiles{N: 100, P50: 50, P90: 90, P99: 99, Max: 100}},
		{"outlier", ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 1000), Percentiles{N: 10, P50: 1, P90: 1, P99: 1000, Max: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentiles(tc.in); got != tc.want {
				t.Errorf("percentiles = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestExactlyOnce(t *testing.T) {
	acked := map[string]ack{
		"a-once": {}, "a-missing": {}, "a-twice": {},
		"d-deploy": {deploy: true}, // deploys join timelines only near incidents
	}
	counts := map[string]int{"a-once": 1, "a-twice": 2, "a-other": 3}
	checked, missing, duplicated := exactlyOnce(acked, counts)
	if checked != 3 || !slices.Equal(missing, []string{"a-missing"}) || !slices.Equal(duplicated, []string{"a-twice ×2"}) {
		t.Fatalf("checked %d, missing %v, duplicated %v; want 3, [a-missing], [a-twice ×2]", checked, missing, duplicated)
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\thindsight\nVmPeak:\t 2049100 kB\nVmHWM:\t   80980 kB\nVmRSS:\t   70000 kB\nRssAnon:\t   50000 kB\nRssFile:\t   20000 kB\nThreads:\t12\n"
	m, err := parseStatus(strings.NewReader(status))
	if want := (procMem{rss: 70000 * 1024, hwm: 80980 * 1024, anon: 50000 * 1024}); err != nil || m != want {
		t.Fatalf("parseStatus = %+v, %v; want %+v", m, err, want)
	}
	if _, err := parseStatus(strings.NewReader("Name:\tx\n")); err == nil {
		t.Fatal("parseStatus without VmRSS: no error")
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{nil, ""},
		{[]string{"--events", "1000", "--rate", "50", "--json"}, ""},
		{[]string{"--flap-rate", "1.5"}, "--flap-rate 1.5: want a fraction"},
		{[]string{"--repeat-ratio", "-0.1"}, "--repeat-ratio -0.1"},
		{[]string{"--alerts-per-notification", "30"}, "a service has only 20 alert series"},
		{[]string{"--connections", "0"}, "--connections 0"},
		{[]string{"--pid", "1", "--pid-file", "x"}, "give one"},
		{[]string{"--rate", "-1"}, "--rate -1"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o, _, err := parseFlags(tc.args, new(bytes.Buffer))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			case tc.want == "" && len(tc.args) == 0 && o.duration != 30*time.Second:
				t.Fatalf("default duration %s, want 30s", o.duration)
			}
		})
	}
}

// The token comes from HINDSIGHT_TOKEN unless --token gives one, and
// is never a flag default (which -h prints).
func TestTokenFromEnv(t *testing.T) {
	t.Setenv("HINDSIGHT_TOKEN", "from-env")
	var help bytes.Buffer
	for _, tc := range []struct {
		args []string
		want string
	}{{nil, "from-env"}, {[]string{"--token", "from-flag"}, "from-flag"}} {
		o, _, err := parseFlags(tc.args, &help)
		if err != nil || o.token != tc.want {
			t.Errorf("parseFlags(%q): token %q, %v; want %q", tc.args, o.token, err, tc.want)
		}
	}
	if _, _, err := parseFlags([]string{"-h"}, &help); strings.Contains(help.String(), "from-env") {
		t.Errorf("-h (%v) shows the token:\n%s", err, help.String())
	}
}
