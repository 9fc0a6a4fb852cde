package domain

import (
	"errors"
	"fmt"
)

// ValidationError reports one invalid field of an input; the API answers it
// with 400 and the field name.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Sentinel errors that services return and the API maps onto HTTP statuses.
var (
	// ErrNotFound: no schedule, job or drill with that id (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts current state, such as a
	// duplicate schedule name or cancelling a finished job (409).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: Temporal or another dependency does not answer (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrUnconfirmed: a write was sent to Temporal but could not be read
	// back within the bound; it may still be applied (503, code
	// write_unconfirmed). The answer never claims an unconfirmed state.
	ErrUnconfirmed = errors.New("write not confirmed")
	// ErrForbidden: the caller lacks the scope for this particular request,
	// such as a forced run without admin (403).
	ErrForbidden = errors.New("forbidden")
)

// ActiveJobError refuses a manual run of a schedule that has an active job
// (a run the Schedule started, or a manual one); it is a domain.ErrConflict
// (409) that names the job.
type ActiveJobError struct {
	ScheduleID string
	JobID      string
}

func (e *ActiveJobError) Error() string {
	return fmt.Sprintf("schedule %s has an active job %s: wait for it to end or cancel it", e.ScheduleID, e.JobID)
}

// Is makes an ActiveJobError a domain.ErrConflict.
func (e *ActiveJobError) Is(target error) bool { return target == ErrConflict }
