package draft

import (
	"net/url"
	"strings"
	"unicode"
)

// escape makes text that came from alerts, deploys or notes safe to place
// inline in a Markdown document: it cannot start a block (heading, quote,
// list, fence, table), open a link, an image, raw HTML or a code span, or
// start emphasis, and it stays on one line. Everything else is left as it
// is, so that "v2.3.1", "checkout-7d9f:8080", "http_requests_total" and
// "p99 latency above 2s" read as written.
func escape(s string) string {
	// Most text (names, versions, instances) is printable ASCII that
	// Markdown reads as it is: nothing to rewrite.
	if t := strings.TrimSpace(s); plainASCII(t) {
		return t
	}
	return escapeSlow(s)
}

// escapeSlow is escape without its shortcut.
func escapeSlow(s string) string {
	s = oneLine(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	rs := []rune(s)
	for i, r := range rs {
		switch r {
		case '\\':
			// A backslash escapes the punctuation after it, and at the end
			// of a line it is a hard break: double it there, and only there,
			// so that C:\path reads as is.
			if i+1 == len(rs) || isASCIIPunct(rs[i+1]) {
				b.WriteString(`\\`)
			} else {
				b.WriteRune(r)
			}
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '|', '[', ']', '`', '*':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '_':
			// Underscores inside a word never make emphasis
			// (http_requests_total); at a word boundary they may (_x_).
			if i > 0 && i+1 < len(rs) && isWordRune(rs[i-1]) && isWordRune(rs[i+1]) {
				b.WriteRune(r)
			} else {
				b.WriteString(`\_`)
			}
		default:
			if i == 0 && strings.ContainsRune("#+-=~", r) {
				// Would start a heading, a list item, a setext underline
				// or a fence at the start of a line.
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
	}
	out := b.String()
	// "1. x" or "1) x" at the start of a line opens an ordered list.
	if n := leadingDigits(out); n > 0 && n < len(out) && (out[n] == '.' || out[n] == ')') && (n+1 == len(out) || out[n+1] == ' ') {
		out = out[:n] + `\` + out[n:]
	}
	return out
}

// plainASCII reports whether s is printable ASCII that escape leaves as
// it is: no character it rewrites, and no start it escapes (a heading, a
// list item, a setext underline, a fence, a number that may open an
// ordered list).
func plainASCII(s string) bool {
	if s == "" || strings.IndexByte("#+-=~0123456789", s[0]) >= 0 {
		return s == ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || strings.IndexByte("\\<>|[]`*_", c) >= 0 {
			return false
		}
	}
	return true
}

// oneLine joins the lines of s with single spaces, trims it and drops
// control characters, so that a multi-line summary cannot end the bullet
// or paragraph it is placed in.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			return '\n'
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	if !strings.Contains(s, "\n") {
		return strings.TrimSpace(s)
	}
	lines := strings.Split(s, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, " ")
}

func isASCIIPunct(r rune) bool {
	return r < unicode.MaxASCII && unicode.IsPunct(r) || strings.ContainsRune("$+<=>^`|~", r)
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func leadingDigits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// safeURL returns u ready to be a Markdown link destination, and false
// when u should not be linked at all: only absolute http and https URLs
// are, so that javascript:, data: and the like never become clickable.
// Characters that could end the destination or the link early (spaces,
// parentheses, angle brackets, quotes, backslashes, controls) are
// percent-encoded.
func safeURL(u string) (string, bool) {
	u = strings.TrimSpace(u)
	if u == "" {
		return "", false
	}
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" {
		return "", false
	}
	if s := strings.ToLower(parsed.Scheme); s != "http" && s != "https" {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`()<>"'\`+"`|", c) >= 0 {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// link renders a Markdown link to u with the given text, or, when u is not
// a safe http(s) URL, the text and the URL as plain escaped text.
func link(text, u string) string {
	if strings.TrimSpace(u) == "" {
		return escape(text)
	}
	if safe, ok := safeURL(u); ok {
		return "[" + escape(text) + "](" + safe + ")"
	}
	return escape(text) + " not linked, not an http(s) URL: " + escape(u)
}
