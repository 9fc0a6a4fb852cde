package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/themis-maintenance/themis/driver"
)

// TaskFailedErrorType is the error type of a retryable task failure.
const TaskFailedErrorType = "TaskFailed"

// classify maps a driver error onto a Temporal application error: failures a
// retry cannot fix (unsupported task, bad input, corruption found, missing
// configuration, a backup that does not verify) are non-retryable with their
// kind as type; everything else (locks, timeouts, connections) is retried.
func classify(err error, attempt int, startedMs int64) error {
	details := FailureDetails{Attempt: attempt, StartedAtMs: startedMs}
	if errors.Is(err, driver.ErrNotSupported) {
		return temporal.NewNonRetryableApplicationError(err.Error(), driver.KindNotSupported, err, details)
	}
	var perm *driver.PermanentError
	if errors.As(err, &perm) {
		return temporal.NewNonRetryableApplicationError(err.Error(), perm.Kind, err, details)
	}
	return temporal.NewApplicationErrorWithCause(err.Error(), TaskFailedErrorType, err, details)
}
