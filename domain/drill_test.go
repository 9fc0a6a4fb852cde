package domain

import (
	"encoding/json"
	"testing"
)

// The typed drill and step states keep their wire values.
func TestDrillStatesWire(t *testing.T) {
	d := Drill{State: DrillAwaiting, Steps: []DrillStep{{Name: "await_start", State: StepTimedOut}}}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		State string `json:"state"`
		Steps []struct {
			State string `json:"state"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.State != "awaiting_approval" || len(raw.Steps) != 1 || raw.Steps[0].State != "timed_out" {
		t.Fatalf("wire form %s", b)
	}
	for s, want := range map[DrillState]bool{
		DrillRunning: false, DrillAwaiting: false, DrillPassed: true, DrillFailed: true,
		DrillRejected: true, DrillAborted: true, DrillCancelled: true, "completed": false,
	} {
		if s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v, want %v", s, !want, want)
		}
	}
}
