package hindsight

import (
	"fmt"
	"math"
	"time"
)

// FormatDuration renders a duration the way an SRE writes it: "45s" under
// a minute, "4m30s" under ten minutes, "1h13m" or "24m" under a day, "2d3h"
// beyond, each rounded to its smallest unit and without zero parts ("1h",
// not "1h0m0s").
func FormatDuration(d time.Duration) string {
	if d < 0 {
		if d == math.MinInt64 {
			d++
		}
		return "-" + FormatDuration(-d)
	}
	if s := d.Round(time.Second); s < time.Minute {
		return fmt.Sprintf("%ds", s/time.Second)
	} else if s < 10*time.Minute {
		m, sec := s/time.Minute, s%time.Minute/time.Second
		if sec == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, sec)
	}
	if m := d.Round(time.Minute); m < 24*time.Hour {
		h, min := m/time.Hour, m%time.Hour/time.Minute
		switch {
		case h == 0:
			return fmt.Sprintf("%dm", min)
		case min == 0:
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, min)
	}
	h := d.Round(time.Hour)
	days, hours := h/(24*time.Hour), h%(24*time.Hour)/time.Hour
	if hours == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, hours)
}
