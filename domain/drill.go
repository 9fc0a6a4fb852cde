package domain

// Drill approval steps: the two waits of a DR drill.
const (
	ApprovalStart    = "start"
	ApprovalComplete = "complete"
)

// Drill states.
const (
	DrillRunning   = "running"
	DrillAwaiting  = "awaiting_approval"
	DrillPassed    = "passed"
	DrillFailed    = "failed"
	DrillRejected  = "rejected"
	DrillAborted   = "aborted"
	DrillCancelled = "cancelled"
)

// Drill is a disaster-recovery drill as the API shows it (SPEC §5–6).
type Drill struct {
	ID             string      `json:"id"`
	RunID          string      `json:"run_id"`
	Target         string      `json:"target"`
	State          string      `json:"state"`
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
	CanaryRows     int64       `json:"canary_rows"`
	RestoredFrom   string      `json:"restored_from"`
	Scratch        string      `json:"scratch"`
	CleanedUp      bool        `json:"cleaned_up"`
	UIURL          string      `json:"ui_url"`
}

// DrillStep is one step of a drill with its timing.
type DrillStep struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	StartedAtMs  int64  `json:"started_at_ms"`
	FinishedAtMs int64  `json:"finished_at_ms"`
	DurationMs   int64  `json:"duration_ms"`
	Detail       string `json:"detail"`
}

// Approval is one decision an operator sent.
type Approval struct {
	Step     string `json:"step"`
	Decision string `json:"decision"`
	Approver string `json:"approver"`
	Comment  string `json:"comment"`
	AtMs     int64  `json:"at_ms"`
}
