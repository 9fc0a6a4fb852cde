package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/themis-maintenance/themis/driver"
)

// classify maps an error of a statement (described by format/args) onto the
// driver contract:
//   - ctx.Err() when the run was cancelled, whatever the statement said;
//   - an error that already is a *driver.PermanentError passes unchanged;
//   - data_corrupted and index_corrupted: permanent IntegrityViolation;
//   - authentication, unknown database, missing privilege, undefined
//     objects, unsupported features and other SQL-level mistakes: permanent
//     Misconfigured (a retry sees the same catalog);
//   - lock_not_available (lock_timeout), query_canceled (our own
//     statement_timeout), deadlocks, serialization failures, connection
//     failures, shutdowns, resource exhaustion and anything unknown: a plain,
//     retryable error.
func classify(ctx context.Context, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	what := fmt.Sprintf(format, args...)
	var perm *driver.PermanentError
	if errors.As(err, &perm) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		code := pgErr.Code
		switch {
		case code == pgerrcode.DataCorrupted || code == pgerrcode.IndexCorrupted:
			return driver.Permanent(driver.KindIntegrityViolation, fmt.Errorf("%s: %w", what, err))
		case code == pgerrcode.LockNotAvailable:
			return fmt.Errorf("%s: lock not available within lock_timeout: %w", what, err)
		case code == pgerrcode.QueryCanceled:
			return fmt.Errorf("%s: cancelled by statement_timeout: %w", what, err)
		case isTransientCode(code):
			return fmt.Errorf("%s: %w", what, err)
		case pgerrcode.IsInvalidAuthorizationSpecification(code),
			pgerrcode.IsInvalidCatalogName(code),
			pgerrcode.IsInvalidSchemaName(code),
			pgerrcode.IsSyntaxErrororAccessRuleViolation(code),
			pgerrcode.IsFeatureNotSupported(code),
			pgerrcode.IsInvalidRoleSpecification(code),
			pgerrcode.IsConfigurationFileError(code),
			code == pgerrcode.UndefinedFile:
			return driver.Permanent(driver.KindMisconfigured, fmt.Errorf("%s: %w", what, err))
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isTransientCode reports SQLSTATEs a later attempt can get past.
func isTransientCode(code string) bool {
	switch {
	case pgerrcode.IsConnectionException(code),
		pgerrcode.IsTransactionRollback(code), // deadlock, serialization failure
		pgerrcode.IsInsufficientResources(code),
		pgerrcode.IsOperatorIntervention(code), // admin/crash shutdown, cannot connect now
		code == pgerrcode.ObjectInUse,
		code == pgerrcode.LockNotAvailable:
		return true
	}
	return false
}

// isCode reports whether err carries SQLSTATE code.
func isCode(err error, codes ...string) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	for _, c := range codes {
		if pgErr.Code == c {
			return true
		}
	}
	return false
}

// isGone reports errors of a relation dropped between listing and working
// on it: the work is skipped, not failed.
func isGone(err error) bool {
	return isCode(err, pgerrcode.UndefinedTable, pgerrcode.UndefinedObject)
}

// isLockTimeout reports a lock_timeout expiry.
func isLockTimeout(err error) bool { return isCode(err, pgerrcode.LockNotAvailable) }

// pgMessage returns the server message of err, or err's text.
func pgMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return err.Error()
}
