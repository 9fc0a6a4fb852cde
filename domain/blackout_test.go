package domain

import (
	"strings"
	"testing"
	"time"
)

func TestBlackouts(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	freeze := Blackout{Name: "release freeze", From: utc("2026-12-20T00:00:00Z"), To: utc("2027-01-04T00:00:00Z")}
	monthEnd := Blackout{Name: "month-end close", Cron: "0 18 28 * *", Timezone: "Europe/Berlin", Duration: 4 * 24 * time.Hour}
	for _, b := range []Blackout{freeze, monthEnd} {
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	for at, want := range map[string]string{
		"2026-12-19T23:59:59Z": "",
		"2026-12-20T00:00:00Z": "release freeze",
		"2027-01-03T23:59:59Z": "release freeze",
		"2027-01-04T00:00:00Z": "",
		"2026-11-28T16:59:00Z": "",                // 17:59 in Berlin
		"2026-11-28T17:00:00Z": "month-end close", // 18:00 in Berlin
		"2026-12-02T16:59:00Z": "month-end close",
		"2026-12-02T17:00:00Z": "",
	} {
		w, ok := ActiveBlackout([]Blackout{freeze, monthEnd}, utc(at))
		if (want == "") == ok || ok && w.Name != want {
			t.Errorf("at %s: %v %+v, want %q", at, ok, w, want)
		}
	}
	// Both: the one that ends last is reported (the month-end one of
	// December 28 ends January 1, the freeze January 4).
	if w, _ := ActiveBlackout([]Blackout{monthEnd, freeze}, utc("2026-12-29T00:00:00Z")); w.Name != "release freeze" || !w.End.Equal(freeze.To) {
		t.Errorf("overlap: %+v", w)
	}

	spec := NewScheduleSpec("orders")
	spec.CronExpression = "0 2 * * *"
	next, err := spec.NextRunOutside(utc("2026-12-18T03:00:00Z"), []Blackout{freeze})
	if err != nil || !next.Equal(utc("2026-12-19T02:00:00Z")) {
		t.Errorf("before the freeze: %v %v", next, err)
	}
	next, err = spec.NextRunOutside(utc("2026-12-19T03:00:00Z"), []Blackout{freeze})
	if err != nil || !next.Equal(utc("2027-01-04T02:00:00Z")) {
		t.Errorf("across the freeze: %v %v", next, err)
	}

	for _, bad := range []struct {
		b    Blackout
		want string
	}{
		{Blackout{From: freeze.From, To: freeze.To}, "needs a name"},
		{Blackout{Name: "x", From: freeze.To, To: freeze.From}, "from must be before to"},
		{Blackout{Name: "x", From: freeze.From}, "from must be before to"},
		{Blackout{Name: "x", Cron: "0 0 28 * *"}, "duration must be"},
		{Blackout{Name: "x", Cron: "0 0 28 * *", Duration: 40 * 24 * time.Hour}, "duration must be"},
		{Blackout{Name: "x", Cron: "0 0 28 *", Duration: time.Hour}, "cron"},
		{Blackout{Name: "x", Cron: "0 0 28 * *", Duration: time.Hour, Timezone: "Mars/Base"}, "Mars/Base"},
		{Blackout{Name: "x", Cron: "0 0 28 * *", Duration: time.Hour, From: freeze.From, To: freeze.To}, "not both"},
		{Blackout{Name: "x"}, "give from/to"},
	} {
		if err := bad.b.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad.b, err, bad.want)
		}
	}
}
