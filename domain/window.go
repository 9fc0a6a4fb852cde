package domain

import "time"

// InWindow reports whether t, seen in loc, falls inside the maintenance window
// [startHour, endHour). The end hour is exclusive; start > end wraps past
// midnight (22→4 covers 22:00–03:59); start == end means the whole day.
func InWindow(t time.Time, loc *time.Location, startHour, endHour int) bool {
	if startHour == endHour {
		return true
	}
	h := t.In(loc).Hour()
	if startHour < endHour {
		return h >= startHour && h < endHour
	}
	return h >= startHour || h < endHour
}
