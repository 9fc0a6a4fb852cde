package health

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Status is a module's health level. The values are the words of the
// /health API: OK is "healthy".
type Status string

// Health levels.
const (
	// OK: the module works as it should.
	OK Status = "healthy"
	// Degraded: the module works, but something needs attention soon.
	Degraded Status = "degraded"
	// Critical: the module does not work; maintenance is affected now.
	Critical Status = "critical"
	// Unknown: the probe could not tell (it panicked, did not answer in
	// time, or has not run yet). Counts as Degraded in the overall status.
	Unknown Status = "unknown"
)

// Valid reports whether s is one of the four levels.
func (s Status) Valid() bool {
	switch s {
	case OK, Degraded, Critical, Unknown:
		return true
	}
	return false
}

// severity orders statuses for the overall status: Unknown weighs as
// Degraded.
func (s Status) severity() int {
	switch s {
	case OK:
		return 0
	case Critical:
		return 2
	}
	return 1
}

// Worst returns the overall status of a set of module statuses: Critical if
// any is critical, else Degraded if any is degraded or unknown, else OK. No
// status at all is Unknown.
func Worst(statuses ...Status) Status {
	if len(statuses) == 0 {
		return Unknown
	}
	worst := OK
	for _, s := range statuses {
		if s.severity() > worst.severity() {
			worst = s
		}
	}
	if worst == Unknown {
		return Degraded
	}
	return worst
}

// Signal is what a probe reports.
type Signal struct {
	Status Status
	// Message says why, in a line an operator reads (no secrets: the
	// report is readable by any read-scoped token).
	Message string
	// CheckedAt is when the probe ran; the Runner sets it when zero.
	CheckedAt time.Time
	// Details are machine-readable facts (lag_ms, pollers, ...); they are
	// encoded as JSON.
	Details map[string]any
}

// maxMessage bounds a signal's message (in runes).
const maxMessage = 500

// normalize makes sig safe to report: a status that is not one of the
// four becomes Unknown, a zero CheckedAt becomes now, and a long message is
// clipped.
func normalize(sig Signal, now time.Time) Signal {
	if !sig.Status.Valid() {
		msg := fmt.Sprintf("probe returned status %q", sig.Status)
		if sig.Status == "" {
			msg = "probe returned no status"
		}
		if sig.Message != "" {
			msg += ": " + sig.Message
		}
		sig.Status, sig.Message = Unknown, msg
	}
	if sig.CheckedAt.IsZero() {
		sig.CheckedAt = now
	}
	if utf8.RuneCountInString(sig.Message) > maxMessage {
		sig.Message = string([]rune(sig.Message)[:maxMessage]) + "…"
	}
	return sig
}

// Module is one probe's latest signal in a Report.
type Module struct {
	Name string
	Signal
}

// Report is the Runner's cached view of every probe.
type Report struct {
	// Overall is Worst of the modules' statuses.
	Overall Status
	// CheckedAt is when the latest probe call started (zero: none has
	// yet).
	CheckedAt time.Time
	// Modules are in registration order.
	Modules []Module
}

// Module returns the module called name, if the report has it.
func (r Report) Module(name string) (Module, bool) {
	for _, m := range r.Modules {
		if m.Name == name {
			return m, true
		}
	}
	return Module{}, false
}
