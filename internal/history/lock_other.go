//go:build !unix

package history

import "context"

// lockFile is a no-op where flock is missing: SQLite's own locking still
// serialises the migrations' transactions, and goose records each version.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }

var _ = errLockTimeout
