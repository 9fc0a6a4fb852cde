package domain

import "slices"

// DrillTrendPoint is one finished drill of a target in its RTO/RPO trend.
type DrillTrendPoint struct {
	DrillID        string     `json:"drill_id"`
	StartedAtMs    int64      `json:"started_at_ms"`
	FinishedAtMs   int64      `json:"finished_at_ms"`
	State          DrillState `json:"state"`
	Measured       bool       `json:"measured"`
	RTOMs          int64      `json:"rto_ms"`
	RPOMs          int64      `json:"rpo_ms"`
	RTOObjectiveMs int64      `json:"rto_objective_ms"`
	RPOObjectiveMs int64      `json:"rpo_objective_ms"`
	// RTOMet and RPOMet compare a measured drill with its objectives (an
	// objective of 0 is met by any figure).
	RTOMet       bool   `json:"rto_met"`
	RPOMet       bool   `json:"rpo_met"`
	RestoredFrom string `json:"restored_from"`
	Reason       string `json:"reason"`
	// Strategy, the restore and WAL replay rates (MB/s) and the age of the
	// restored backup at the failure instant (ms; 0 when no backup was
	// restored), from the drill's report.
	Strategy    string  `json:"strategy,omitempty"`
	RestoreMBps float64 `json:"restore_mb_per_s,omitempty"`
	ReplayMBps  float64 `json:"replay_mb_per_s,omitempty"`
	BackupAgeMs int64   `json:"backup_age_ms,omitempty"`
}

// DrillTrend is a target's drills, oldest first, with a summary.
type DrillTrend struct {
	Target string            `json:"target"`
	Points []DrillTrendPoint `json:"points"`
	// Drills counts the points; Measured those with RTO/RPO figures;
	// Passed those that passed.
	Drills   int `json:"drills"`
	Measured int `json:"measured"`
	Passed   int `json:"passed"`
	// RTO and RPO over the measured drills (0 when none): median and
	// worst, and the newest drill's objectives.
	RTOMedianMs    int64 `json:"rto_median_ms"`
	RTOMaxMs       int64 `json:"rto_max_ms"`
	RPOMedianMs    int64 `json:"rpo_median_ms"`
	RPOMaxMs       int64 `json:"rpo_max_ms"`
	RTOObjectiveMs int64 `json:"rto_objective_ms"`
	RPOObjectiveMs int64 `json:"rpo_objective_ms"`
}

// TrendPoint is the trend point of a finished drill d.
func TrendPoint(d Drill) DrillTrendPoint {
	return DrillTrendPoint{
		DrillID: d.ID, StartedAtMs: d.StartedAtMs, FinishedAtMs: d.FinishedAtMs, State: d.State, Measured: d.Measured,
		RTOMs: d.RTOMs, RPOMs: d.RPOMs, RTOObjectiveMs: d.RTOObjectiveMs, RPOObjectiveMs: d.RPOObjectiveMs,
		RTOMet:       d.Measured && (d.RTOObjectiveMs == 0 || d.RTOMs <= d.RTOObjectiveMs),
		RPOMet:       d.Measured && (d.RPOObjectiveMs == 0 || d.RPOMs <= d.RPOObjectiveMs),
		RestoredFrom: d.RestoredFrom, Reason: d.Reason,
		Strategy: d.Strategy, RestoreMBps: d.RestoreMBps, ReplayMBps: d.ReplayMBps, BackupAgeMs: backupAge(d),
	}
}

// backupAge is the age of d's restored backup at its failure instant.
func backupAge(d Drill) int64 {
	if d.BackupAtMs <= 0 || d.FailureAtMs <= 0 {
		return 0
	}
	return max(0, d.FailureAtMs-d.BackupAtMs)
}

// NewDrillTrend summarises points (any order) into target's trend, oldest
// first.
func NewDrillTrend(target string, points []DrillTrendPoint) DrillTrend {
	t := DrillTrend{Target: target, Points: slices.Clone(points)}
	if t.Points == nil {
		t.Points = []DrillTrendPoint{}
	}
	slices.SortStableFunc(t.Points, func(a, b DrillTrendPoint) int {
		switch {
		case a.StartedAtMs < b.StartedAtMs:
			return -1
		case a.StartedAtMs > b.StartedAtMs:
			return 1
		}
		return 0
	})
	t.Drills = len(t.Points)
	var rto, rpo []int64
	for _, p := range t.Points {
		if p.State == DrillPassed {
			t.Passed++
		}
		if p.Measured {
			t.Measured++
			rto, rpo = append(rto, p.RTOMs), append(rpo, p.RPOMs)
		}
	}
	t.RTOMedianMs, t.RTOMaxMs = medianMax(rto)
	t.RPOMedianMs, t.RPOMaxMs = medianMax(rpo)
	if n := len(t.Points); n > 0 {
		t.RTOObjectiveMs, t.RPOObjectiveMs = t.Points[n-1].RTOObjectiveMs, t.Points[n-1].RPOObjectiveMs
	}
	return t
}

// medianMax returns the median (the lower middle of an even count) and
// the maximum of v, 0 and 0 when v is empty.
func medianMax(v []int64) (int64, int64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2], s[len(s)-1]
}
