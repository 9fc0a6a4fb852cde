package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/themis-maintenance/themis/domain"
)

// ProgressMemo is the memo key under which a job keeps its task states
// (version progressMemoChange on): Temporal shows the memo in a describe
// and in visibility lists, so the API reads a job's progress without a
// workflow query (no worker replays the job to answer a read).
const ProgressMemo = "progress"

// progressMemoChange versions the progress memo (GetVersion).
const progressMemoChange = "job-progress-memo"

// maxMemoText bounds each summary and error message in the memo (the full
// text is in the job's result and its history record).
const maxMemoText = 300

// TaskProgress is one task's entry in the progress memo.
type TaskProgress struct {
	TaskType      domain.TaskType `json:"task_type"`
	State         domain.JobState `json:"state"`
	Attempt       int             `json:"attempt,omitempty"`
	StartedAtMs   int64           `json:"started_at_ms,omitempty"`
	FinishedAtMs  int64           `json:"finished_at_ms,omitempty"`
	ResultSummary string          `json:"result_summary,omitempty"`
	ErrorMessage  string          `json:"error_message,omitempty"`
	PredictedMs   int64           `json:"predicted_ms,omitempty"`
}

// JobProgress is the progress memo: the job's state and its tasks'.
type JobProgress struct {
	State       domain.JobState `json:"state"`
	ProgressPct float64         `json:"progress_pct"`
	Tasks       []TaskProgress  `json:"tasks"`
}

// progressOf is the memo of job.
func progressOf(job domain.Job) JobProgress {
	p := JobProgress{State: job.State, ProgressPct: job.ProgressPct, Tasks: make([]TaskProgress, len(job.Tasks))}
	for i, t := range job.Tasks {
		p.Tasks[i] = TaskProgress{
			TaskType: t.TaskType, State: t.State, Attempt: t.Attempt, StartedAtMs: t.StartedAtMs, FinishedAtMs: t.FinishedAtMs,
			ResultSummary: clip(t.ResultSummary), ErrorMessage: clip(t.ErrorMessage), PredictedMs: t.PredictedMs,
		}
	}
	return p
}

func clip(s string) string {
	if len(s) <= maxMemoText {
		return s
	}
	cut := maxMemoText
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// Apply copies the memo's task states into job (whose task list comes
// from its schedule entry), when the memo has the same tasks. The job's
// own state is left alone: the execution status and the ThemisJobState
// search attribute are fresher (waiting for a slot, say).
func (p JobProgress) Apply(job *domain.Job) {
	if len(p.Tasks) != len(job.Tasks) {
		return
	}
	for i, t := range p.Tasks {
		if t.TaskType != job.Tasks[i].TaskType {
			return
		}
	}
	for i, t := range p.Tasks {
		jt := &job.Tasks[i]
		jt.State, jt.Attempt, jt.StartedAtMs, jt.FinishedAtMs = t.State, t.Attempt, t.StartedAtMs, t.FinishedAtMs
		jt.ResultSummary, jt.ErrorMessage, jt.PredictedMs = t.ResultSummary, t.ErrorMessage, t.PredictedMs
		if t.State.Terminal() {
			jt.ProgressPct = 100
		}
	}
	job.ProgressPct = p.ProgressPct
}

// upsertProgress records job's progress in the memo (when on); a failure
// is logged, never fatal to the job.
func upsertProgress(ctx workflow.Context, on bool, job domain.Job) {
	if !on {
		return
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{ProgressMemo: progressOf(job)}); err != nil {
		workflow.GetLogger(ctx).Warn("progress memo not recorded", "error", err)
	}
}
