package cmdutil

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSince reads a --since value relative to now: a duration back in
// time ("90m", "1h30m", "7d", "2w"), an RFC 3339 time
// ("2025-01-01T02:00:00Z") or Unix milliseconds. "" is the zero time (no
// lower bound). Errors are usage errors.
func ParseSince(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if strings.Trim(v, "0123456789") == "" && len(v) >= 10 && len(v) <= 15 {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return time.UnixMilli(ms).UTC(), nil
		}
	}
	d, err := parseAgo(v)
	if err != nil || d <= 0 {
		return time.Time{}, FlagErrorf("invalid --since %q: want a duration such as 1h, 30m or 7d, an RFC 3339 time, or Unix milliseconds", v)
	}
	return now.Add(-d), nil
}

// parseAgo is time.ParseDuration plus whole days (d) and weeks (w).
func parseAgo(v string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			k, err := strconv.Atoi(n)
			if err != nil || k < 0 || k > 100_000 {
				return 0, fmt.Errorf("bad count %q", n)
			}
			return time.Duration(k) * unit, nil
		}
	}
	return time.ParseDuration(v)
}
