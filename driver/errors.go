package driver

import (
	"errors"
	"fmt"

	"github.com/themis-maintenance/themis/domain"
)

// ErrNotSupported is wrapped by errors for task types a driver cannot do.
var ErrNotSupported = errors.New("not supported")

// NotSupported returns the error a driver gives for a task it cannot do.
func NotSupported(driverName string, task domain.TaskType) error {
	return fmt.Errorf("task %s is %w by driver %s", task, ErrNotSupported, driverName)
}

// Kinds of permanent failure; activities use them as the non-retryable
// application error type so the UI and API show what went wrong.
const (
	KindInvalidInput       = "InvalidInput"
	KindIntegrityViolation = "IntegrityViolation"
	KindNotSupported       = "NotSupported"
	KindMisconfigured      = "Misconfigured"
	KindVerificationFailed = "VerificationFailed"
)

// NonRetryableKinds returns every kind of permanent failure: the
// NonRetryableErrorTypes of each retry policy that runs driver work (task
// activities and drill steps). Activities already fail a PermanentError as
// non-retryable; listing the kinds in the policy keeps that true for an
// error that reaches Temporal some other way.
func NonRetryableKinds() []string {
	return []string{KindInvalidInput, KindNotSupported, KindIntegrityViolation, KindMisconfigured, KindVerificationFailed}
}

// PermanentError is a failure that retrying cannot fix: bad options,
// corruption found, a misconfigured target, a backup that does not verify.
type PermanentError struct {
	Kind string
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a non-retryable failure of the given kind.
func Permanent(kind string, err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Kind: kind, Err: err}
}

// Permanentf formats a non-retryable failure of the given kind.
func Permanentf(kind, format string, args ...any) error {
	return &PermanentError{Kind: kind, Err: fmt.Errorf(format, args...)}
}
