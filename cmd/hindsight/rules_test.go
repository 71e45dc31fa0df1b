package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badMatcher := write("bad-matcher.yml", "correlation:\n  rules:\n    - name: prod-critical\n      match:\n        - 'env=\"prod\"'\n        - 'severity=~\"(\"'\n")
	dupName := write("dup.yml", "correlation:\n  rules:\n    - name: a\n    - name: b\n    - name: a\n")
	typo := write("typo.yml", "correlation:\n  rules:\n    - name: a\n      keys: [cluster]\n")
	empty := write("empty.yml", "")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings, in order
		stderr string   // substring; "" wants none
	}{
		{"example config", []string{"rules", "check", "../../deploy/hindsight.yml"}, 0,
			[]string{"../../deploy/hindsight.yml: ok", "rule 1: heartbeats", "rule 2: prod-critical", "default rule"}, ""},
		{"no rules", []string{"rules", "check", empty}, 0,
			[]string{"ok, 0 rules", "default rule: alerts no rule matches", "key              the first present of service, job, else the group key"}, ""},
		{"bad matcher", []string{"rules", "check", badMatcher}, 1, nil,
			"hindsight: config " + badMatcher + ` line 6: correlation.rules[0] (prod-critical).match[1] "severity=~\"(\"": bad matcher: error parsing regexp: missing closing )`},
		{"duplicate name", []string{"rules", "check", dupName}, 1, nil,
			"hindsight: config " + dupName + ` line 5: correlation.rules[2] (a): another rule is named "a"`},
		{"unknown setting", []string{"rules", "check", typo}, 1, nil,
			"line 4: correlation.rules[0] (a): field keys not found"},
		{"missing file", []string{"rules", "check", filepath.Join(dir, "nope.yml")}, 1, nil, "nope.yml"},
		{"no subcommand", []string{"rules"}, 2, nil, "hindsight rules check FILE"},
		{"unknown subcommand", []string{"rules", "lint", empty}, 2, nil, `unknown subcommand "lint"`},
		{"no file", []string{"rules", "check"}, 2, nil, "one config file, got 0"},
		{"two files", []string{"rules", "check", empty, empty}, 2, nil, "one config file, got 2"},
		{"help", []string{"rules", "check", "-h"}, 0, nil, "Usage: hindsight rules check FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, stderr %q; want exit %d", code, errb.String(), tc.code)
			}
			rest := out.String()
			for _, s := range tc.stdout {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Fatalf("stdout:\n%s\nwant %q (in order)", out.String(), s)
				}
				rest = rest[i+len(s):]
			}
			if tc.stdout == nil && out.Len() > 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
			if tc.stderr == "" && errb.Len() > 0 || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q, want %q", errb.String(), tc.stderr)
			}
		})
	}
}

// TestRulesCheckSummary compares the summary of testdata/rules.yml with
// testdata/rules-check.golden (go test -run RulesCheckSummary -update
// rewrites it).
func TestRulesCheckSummary(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "check", "testdata/rules.yml"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	golden := filepath.Join("testdata", "rules-check.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != string(want) {
		t.Fatalf("rules check printed:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}
