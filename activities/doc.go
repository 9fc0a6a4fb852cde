// Package activities holds one Temporal activity per maintenance task type.
// Each resolves the job's target to its driver, lets the driver do the work,
// turns the driver's progress into heartbeats carrying a resume checkpoint,
// and classifies failures as retryable or not.
package activities
