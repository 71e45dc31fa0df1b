package draft

import (
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{400 * time.Millisecond, "0s"},
		{time.Second, "1s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 600*time.Millisecond, "1m"},
		{time.Minute, "1m"},
		{90 * time.Second, "1m30s"},
		{4*time.Minute + 30*time.Second, "4m30s"},
		{9*time.Minute + 59*time.Second + 600*time.Millisecond, "10m"},
		{10*time.Minute + 20*time.Second, "10m"},
		{24 * time.Minute, "24m"},
		{24*time.Minute + 40*time.Second, "25m"},
		{time.Hour, "1h"},
		{73 * time.Minute, "1h13m"},
		{73*time.Minute + 1*time.Second, "1h13m"},
		{23*time.Hour + 59*time.Minute + 40*time.Second, "1d"},
		{24 * time.Hour, "1d"},
		{51 * time.Hour, "2d3h"},
		{51*time.Hour + 29*time.Minute, "2d3h"},
		{-90 * time.Second, "-1m30s"},
	} {
		t.Run(tc.in.String(), func(t *testing.T) {
			if got := formatDuration(tc.in); got != tc.want {
				t.Errorf("formatDuration(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"version", "v2.3.1", "v2.3.1"},
		{"host and port", "checkout-7d9f:8080", "checkout-7d9f:8080"},
		{"plain sentence", "p99 latency above 2s", "p99 latency above 2s"},
		{"metric name", "http_requests_total", "http_requests_total"},
		{"percent and ampersand", "5xx ratio above 5% in R&D", "5xx ratio above 5% in R&D"},
		{"windows path", `C:\data`, `C:\data`},
		{"heading", "# heading", `\# heading`},
		{"hash inside", "issue #42 in C#", "issue #42 in C#"},
		{"quote", "> quote", "&gt; quote"},
		{"dash list", "- item", `\- item`},
		{"plus list", "+ item", `\+ item`},
		{"star list", "* item", `\* item`},
		{"ordered list", "1. first", `1\. first`},
		{"ordered list paren", "12) twelfth", `12\) twelfth`},
		{"number", "1.5x slower", `1.5x slower`},
		{"bare number", "42.", `42\.`},
		{"setext", "===", `\===`},
		{"fence", "~~~", `\~~~`},
		{"thematic break", "---", `\---`},
		{"table pipes", "| pipe |", `\| pipe \|`},
		{"link", "[link](javascript:alert(1))", `\[link\](javascript:alert(1))`},
		{"image", "![img](x)", `!\[img\](x)`},
		{"html", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"autolink", "<https://evil.example.com>", "&lt;https://evil.example.com&gt;"},
		{"backticks", "`rm -rf /`", "\\`rm -rf /\\`"},
		{"emphasis", "**bold** and _em_", `\*\*bold\*\* and \_em\_`},
		{"backslash before punctuation", `\[not a link]`, `\\\[not a link\]`},
		{"backslash before html", `\<b>`, `\\&lt;b&gt;`},
		{"trailing backslash", `ends in \`, `ends in \\`},
		{"newlines", "line one\n# heading\r\n\r\n| a |", `line one # heading \| a \|`},
		{"indented", "    code block", "code block"},
		{"control characters", "a\x00b\x1bc\td", "abc d"},
		{"unicode line separator", "a\u2028# b", "a # b"},
		{"empty", " \n ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := escape(tc.in); got != tc.want {
				t.Errorf("escape(%q)\ngot:  %s\nwant: %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestSafeURL(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"https", "https://grafana.example.com/d/abc?var-service=checkout", "https://grafana.example.com/d/abc?var-service=checkout", true},
		{"parentheses and spaces", "http://prom:9090/graph?g0.expr=rate(x[5m]) > 2", "http://prom:9090/graph?g0.expr=rate%28x[5m]%29%20%3E%202", true},
		{"breakout", "https://ci.example.com/a)[x](javascript:alert(1)", "https://ci.example.com/a%29[x]%28javascript:alert%281%29", true},
		{"quotes and backticks", "https://x.example.com/\"'`", "https://x.example.com/%22%27%60", true},
		{"newline", "https://x.example.com/a\nb", "", false},
		{"javascript", "javascript:alert(1)", "", false},
		{"javascript mixed case", " JavaScript:alert(1)", "", false},
		{"javascript with slashes", "javascript://example.com/%0Aalert(1)", "", false},
		{"data", "data:text/html,<script>alert(1)</script>", "", false},
		{"relative", "/graph?g0.expr=up", "", false},
		{"scheme-relative", "//evil.example.com/x", "", false},
		{"unparseable", "http://[::1", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := safeURL(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("safeURL(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestLink(t *testing.T) {
	for _, tc := range []struct {
		name, text, url, want string
	}{
		{"safe", "runbook", "https://runbooks.example.com/a b", "[runbook](https://runbooks.example.com/a%20b)"},
		{"escaped text", "[x]", "https://e.example.com", `[\[x\]](https://e.example.com)`},
		{"unsafe", "source", "javascript:alert(1)", "source not linked, not an http(s) URL: javascript:alert(1)"},
		{"unsafe with markup", "source", "javascript:[x](y)", `source not linked, not an http(s) URL: javascript:\[x\](y)`},
		{"no url", "source", "", "source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := link(tc.text, tc.url); got != tc.want {
				t.Errorf("link(%q, %q)\ngot:  %s\nwant: %s", tc.text, tc.url, got, tc.want)
			}
		})
	}
}
