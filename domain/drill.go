package domain

// Drill approval steps: the two waits of a DR drill.
const (
	ApprovalStart    = "start"
	ApprovalComplete = "complete"
)

// DrillState is the state of a drill: running or awaiting an approval
// while it runs, then one of the final states.
type DrillState string

// Drill states.
const (
	DrillRunning   DrillState = "running"
	DrillAwaiting  DrillState = "awaiting_approval"
	DrillPassed    DrillState = "passed"
	DrillFailed    DrillState = "failed"
	DrillRejected  DrillState = "rejected"
	DrillAborted   DrillState = "aborted"
	DrillCancelled DrillState = "cancelled"
	// DrillCleaningUp is what the API reports while the drill's outcome is
	// settled (the workflow's query already says passed, failed, rejected,
	// aborted or cancelled) but its clean-up and report steps still run:
	// the drill is not over until its workflow has closed.
	DrillCleaningUp DrillState = "cleaning_up"
)

// Terminal reports whether the drill has ended.
func (s DrillState) Terminal() bool {
	switch s {
	case DrillPassed, DrillFailed, DrillRejected, DrillAborted, DrillCancelled:
		return true
	}
	return false
}

// StepState is how one step of a drill ended.
type StepState string

// Drill step states. A step that ran ends succeeded, failed or cancelled;
// a wait for an approval ends approved, rejected, timed_out or cancelled.
const (
	StepSucceeded StepState = "succeeded"
	StepFailed    StepState = "failed"
	StepCancelled StepState = "cancelled"
	StepApproved  StepState = "approved"
	StepRejected  StepState = "rejected"
	StepTimedOut  StepState = "timed_out"
)

// Drill is a disaster-recovery drill as the API shows it (docs/DR_DRILL.md).
type Drill struct {
	ID             string      `json:"id"`
	RunID          string      `json:"run_id"`
	Target         string      `json:"target"`
	State          DrillState  `json:"state"`
	Step           string      `json:"step"`
	Awaiting       string      `json:"awaiting_approval"`
	RequestedBy    string      `json:"requested_by"`
	JobID          string      `json:"job_id,omitempty"`
	StartedAtMs    int64       `json:"started_at_ms"`
	FinishedAtMs   int64       `json:"finished_at_ms"`
	FailureAtMs    int64       `json:"failure_at_ms"`
	NewestCanaryMs int64       `json:"newest_canary_at_ms"`
	VerifiedAtMs   int64       `json:"verified_at_ms"`
	RTOMs          int64       `json:"rto_ms"`
	RPOMs          int64       `json:"rpo_ms"`
	RTOObjectiveMs int64       `json:"rto_objective_ms"`
	RPOObjectiveMs int64       `json:"rpo_objective_ms"`
	Measured       bool        `json:"measured"`
	Passed         bool        `json:"passed"`
	Reason         string      `json:"reason"`
	Steps          []DrillStep `json:"steps"`
	Approvals      []Approval  `json:"approvals"`
	// Refused are decisions the drill received but did not apply (a signal
	// for a step not awaited, sent before its wait began, a second decision,
	// one after the drill ended), with their channel and reason.
	Refused      []Approval `json:"refused_decisions"`
	CanaryRows   int64      `json:"canary_rows"`
	RestoredFrom string     `json:"restored_from"`
	Scratch      string     `json:"scratch"`
	CleanedUp    bool       `json:"cleaned_up"`
	UIURL        string     `json:"ui_url"`

	// What the restore used and how fast it went (docs/DR_DRILL.md):
	// the strategy, the backup restored (id and time), the WAL segments
	// replayed, the bytes copied and replayed, and their rates in MB/s
	// (10^6 bytes a second; 0 when the phase did not run or took no time).
	Strategy      string  `json:"strategy,omitempty"`
	BackupID      string  `json:"backup_id,omitempty"`
	BackupAtMs    int64   `json:"backup_at_ms,omitempty"`
	WALRange      string  `json:"wal_range,omitempty"`
	RestoredBytes int64   `json:"restored_bytes,omitempty"`
	WALBytes      int64   `json:"wal_bytes,omitempty"`
	CopyMs        int64   `json:"copy_ms,omitempty"`
	ReplayMs      int64   `json:"replay_ms,omitempty"`
	RestoreMBps   float64 `json:"restore_mb_per_s,omitempty"`
	ReplayMBps    float64 `json:"replay_mb_per_s,omitempty"`
	// RPOBasis is what the recovery point was: RPOBasisCanary (the newest
	// canary row found in the restored instance) or RPOBasisBackup (the
	// restored backup's time, later than any canary row it holds).
	RPOBasis string `json:"rpo_basis,omitempty"`
	// ClockSource says whose clock gave the failure and serving instants:
	// "host <id>" when the canary, restore and verify ran on that one
	// host, "workers" when they could not be pinned to one host (a worker
	// without a host queue; two clocks may then bend the RTO).
	ClockSource string `json:"clock_source,omitempty"`
}

// RPO bases (Drill.RPOBasis).
const (
	RPOBasisCanary = "canary"
	RPOBasisBackup = "backup"
)

// MBPerSecond is bytes over ms as MB/s (10^6 bytes a second), 0 when
// either is not positive.
func MBPerSecond(bytes, ms int64) float64 {
	if bytes <= 0 || ms <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / (float64(ms) / 1000)
}

// DrillStep is one step of a drill with its timing.
type DrillStep struct {
	Name         string    `json:"name"`
	State        StepState `json:"state"`
	StartedAtMs  int64     `json:"started_at_ms"`
	FinishedAtMs int64     `json:"finished_at_ms"`
	DurationMs   int64     `json:"duration_ms"`
	Detail       string    `json:"detail"`
}

// Approval channels: how a decision reached the drill.
const (
	// ChannelAPI is an Update sent by the API (POST /drills/{id}/approve).
	ChannelAPI = "api"
	// ChannelUpdate is an Update sent by another Temporal client.
	ChannelUpdate = "update"
	// ChannelSignal is a signal (Temporal UI, temporal CLI).
	ChannelSignal = "signal"
)

// Approval is one decision an operator sent.
type Approval struct {
	Step     string `json:"step"`
	Decision string `json:"decision"`
	Approver string `json:"approver"`
	Comment  string `json:"comment"`
	AtMs     int64  `json:"at_ms"`
	// Channel is how the decision arrived: api, update or signal.
	Channel string `json:"channel"`
	// Reason says why a refused decision was not applied (empty for one
	// that was).
	Reason string `json:"reason"`
}
