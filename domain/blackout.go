package domain

import (
	"fmt"
	"strings"
	"time"
)

// MaxBlackoutDuration bounds a recurring blackout's length.
const MaxBlackoutDuration = 31 * 24 * time.Hour

// Blackout is a period when no scheduled maintenance starts on a target (a
// release freeze, month-end close): docs/TARGETS.md, "Blackouts". It is
// either one-off (From–To) or recurring (Cron starts it in Timezone, and
// it lasts Duration).
type Blackout struct {
	Name string `json:"name"`
	// From and To bound a one-off blackout; To is exclusive.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Cron (5 fields) starts a recurring blackout in Timezone (default
	// UTC); each lasts Duration.
	Cron     string        `json:"cron,omitempty"`
	Timezone string        `json:"timezone,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
}

// BlackoutWindow is one occurrence of a blackout: [Start, End).
type BlackoutWindow struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// String says which blackout and until when, for job summaries.
func (w BlackoutWindow) String() string {
	return fmt.Sprintf("blackout %q from %s until %s", w.Name, w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339))
}

// Validate checks the blackout: a name, and either From < To or a valid
// Cron with a Duration of at most MaxBlackoutDuration (not both).
func (b Blackout) Validate() error {
	if strings.TrimSpace(b.Name) == "" {
		return fmt.Errorf("blackout needs a name")
	}
	oneOff := !b.From.IsZero() || !b.To.IsZero()
	switch {
	case oneOff && b.Cron != "":
		return fmt.Errorf("blackout %q: give either from/to or cron/duration, not both", b.Name)
	case oneOff:
		if b.From.IsZero() || b.To.IsZero() || !b.From.Before(b.To) {
			return fmt.Errorf("blackout %q: from must be before to (RFC 3339 times)", b.Name)
		}
	case b.Cron != "":
		if err := ParseCron(b.Cron); err != nil {
			return fmt.Errorf("blackout %q: cron %q: %w", b.Name, b.Cron, err)
		}
		if b.Duration <= 0 || b.Duration > MaxBlackoutDuration {
			return fmt.Errorf("blackout %q: duration must be more than 0 and at most %s, got %s", b.Name, MaxBlackoutDuration, b.Duration)
		}
		if _, err := LoadTimezone(b.tz()); err != nil {
			return fmt.Errorf("blackout %q: %w", b.Name, err)
		}
	default:
		return fmt.Errorf("blackout %q: give from/to (one-off) or cron/duration (recurring)", b.Name)
	}
	return nil
}

func (b Blackout) tz() string {
	if b.Timezone == "" {
		return "UTC"
	}
	return b.Timezone
}

// At returns the occurrence of b that contains t, if any.
func (b Blackout) At(t time.Time) (BlackoutWindow, bool) {
	if b.Cron == "" {
		if !t.Before(b.From) && t.Before(b.To) {
			return BlackoutWindow{Name: b.Name, Start: b.From, End: b.To}, true
		}
		return BlackoutWindow{}, false
	}
	sched, err := parseCron(b.Cron)
	if err != nil {
		return BlackoutWindow{}, false
	}
	loc, err := LoadTimezone(b.tz())
	if err != nil {
		return BlackoutWindow{}, false
	}
	// The occurrence containing t started in (t − Duration, t]: the first
	// start after t − Duration, when it is not after t.
	start := sched.Next(t.Add(-b.Duration).In(loc))
	if start.IsZero() || start.After(t) {
		return BlackoutWindow{}, false
	}
	return BlackoutWindow{Name: b.Name, Start: start, End: start.Add(b.Duration)}, true
}

// ActiveBlackout returns the blackout among bs in force at t that ends
// last (the one to report), if any.
func ActiveBlackout(bs []Blackout, t time.Time) (BlackoutWindow, bool) {
	var out BlackoutWindow
	found := false
	for _, b := range bs {
		if w, ok := b.At(t); ok && (!found || w.End.After(out.End)) {
			out, found = w, true
		}
	}
	return out, found
}

// maxBlackoutSkips bounds NextRunOutside's search.
const maxBlackoutSkips = 1000

// NextRunOutside is the first run of the spec's cron after after that falls
// outside every blackout (zero when none is found within 1000 runs).
func (s ScheduleSpec) NextRunOutside(after time.Time, bs []Blackout) (time.Time, error) {
	t := after
	for range maxBlackoutSkips {
		next, err := s.NextRun(t)
		if err != nil {
			return time.Time{}, err
		}
		w, in := ActiveBlackout(bs, next)
		if !in {
			return next, nil
		}
		// Jump to the end of the blackout (less a second: NextRun is
		// strictly after its argument).
		t = maxTime(next, w.End.Add(-time.Second))
	}
	return time.Time{}, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
