package draft

import "testing"

// FuzzEscapeShortcut: escape's shortcut for plain text gives what the
// full rewrite gives, for any text.
func FuzzEscapeShortcut(f *testing.F) {
	for _, s := range []string{"v2.3.1", "checkout-7d9f:8080", "1. first", "42.", "# x", " a b ", "http_requests_total",
		"C:\\path", "a|b", "<b>", "x\ty", "", "- item", "HighLatency", "p99 latency above 2s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := escape(s), escapeSlow(s); got != want {
			t.Fatalf("escape(%q) = %q, the full rewrite gives %q", s, got, want)
		}
	})
}
