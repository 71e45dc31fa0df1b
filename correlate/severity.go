package correlate

import "strings"

// severityRank orders the severity names in common use; unknown names
// rank lowest but above none.
func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "":
		return 0
	case "critical", "page", "p1", "sev1", "emergency", "fatal":
		return 50
	case "high", "error", "major", "p2", "sev2":
		return 40
	case "warning", "warn", "medium", "p3", "sev3":
		return 30
	case "low", "minor", "p4", "sev4":
		return 20
	case "info", "informational", "none", "p5":
		return 10
	}
	return 5
}

// maxSeverity returns the higher of two severities, deterministically.
func maxSeverity(a, b string) string {
	ra, rb := severityRank(a), severityRank(b)
	if ra != rb {
		if ra > rb {
			return a
		}
		return b
	}
	return min(a, b)
}

// SeverityClass maps a severity to a bounded metric label value.
func SeverityClass(s string) string {
	switch severityRank(s) {
	case 50:
		return "critical"
	case 40:
		return "error"
	case 30:
		return "warning"
	case 20, 10:
		return "info"
	case 0:
		return "none"
	}
	return "other"
}
