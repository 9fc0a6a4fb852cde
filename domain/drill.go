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
