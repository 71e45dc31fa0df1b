package ingest

import (
	"strings"
	"testing"
)

func TestOneLine(t *testing.T) {
	long := strings.Repeat("a", 250)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "short", in: "disk full", want: "disk full"},
		{name: "trimmed", in: "  disk full \n", want: "disk full"},
		{name: "first line", in: "disk full\non /var", want: "disk full…"},
		{name: "CRLF", in: "disk full\r\non /var", want: "disk full…"},
		{name: "long", in: long, want: strings.Repeat("a", 197) + "…"},
		{name: "exactly the limit", in: long[:200], want: long[:200]},
		{name: "limit and more lines", in: long[:200] + "\nmore", want: strings.Repeat("a", 197) + "…"},
		{name: "never splits a rune", in: strings.Repeat("€", 100), want: strings.Repeat("€", 65) + "…"},
		{name: "empty", in: " \n ", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := oneLine(tc.in)
			if got != tc.want {
				t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > maxSummary {
				t.Errorf("%d bytes, want at most %d", len(got), maxSummary)
			}
		})
	}
}
