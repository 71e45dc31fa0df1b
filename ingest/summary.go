package ingest

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSummary bounds an event's one-line summary, in bytes. Timelines and
// postmortems show summaries inline; the full text stays in the details.
const maxSummary = 200

// oneLine returns the first line of s, trimmed and cut to maxSummary
// bytes on a rune boundary, with an ellipsis when anything was left out.
func oneLine(s string) string {
	const ellipsis = "…"
	s = strings.TrimSpace(s)
	line, cut := s, false
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		line, cut = strings.TrimSpace(s[:i]), true
	}
	if len(line) > maxSummary || (cut && len(line) > maxSummary-len(ellipsis)) {
		line, cut = truncate(line, maxSummary-len(ellipsis)), true
	}
	if cut {
		return line + ellipsis
	}
	return line
}

// clip shortens a caller's value before it is echoed in an error message,
// so that a megabyte of garbage does not come back in the response.
func clip(s string) string {
	const max = 64
	// Quoted in messages with %q: invalid bytes and control characters
	// would come out as escapes several times their length, so they are
	// replaced first and the bound holds for what the caller reads.
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= max {
		return s
	}
	return truncate(s, max) + "…"
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// copyMap copies a label or annotation set, so that events never share a
// map with the decoded payload; an empty set becomes nil.
func copyMap[M ~map[string]string](m M) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
