package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/health"
	"github.com/themis-maintenance/themis/internal/audit"
	"github.com/themis-maintenance/themis/internal/history"
)

// historyProbe: the history store answers a ping and a read of its schema
// version. Critical when not: task results, retained jobs and backups'
// records are kept there.
func historyProbe(store *history.Store) health.ProbeFunc {
	return func(ctx context.Context) health.Signal {
		start := time.Now()
		details := map[string]any{"driver": store.Driver()}
		if err := store.Ping(ctx); err != nil {
			return health.Signal{Status: health.Critical, Details: details, Message: "the history store does not answer: " + redact(err)}
		}
		v, err := store.SchemaVersion(ctx)
		if err != nil {
			return health.Signal{Status: health.Critical, Details: details, Message: "the history store cannot be read: " + redact(err)}
		}
		answered := time.Since(start).Milliseconds()
		details["schema_version"], details["answer_ms"] = v, answered
		return health.Signal{Status: health.OK, Details: details,
			Message: fmt.Sprintf("%s store answered in %d ms (schema version %d)", store.Driver(), answered, v)}
	}
}

// auditProbe: the audit sink can take an event. The gateway refuses writes
// while the audit log fails, so a sink that cannot is critical. A file log
// is opened for appending as Record opens it (creating it when log
// rotation moved it away), without writing; the history store sink must
// answer a read of its table. It returns nil for a sink it does not know.
func auditProbe(sink api.AuditLog) health.ProbeFunc {
	switch l := sink.(type) {
	case *audit.Log:
		return func(context.Context) health.Signal {
			details := map[string]any{"sink": "file"}
			if err := os.MkdirAll(filepath.Dir(l.Path()), 0o700); err != nil {
				return health.Signal{Status: health.Critical, Details: details, Message: "audit log directory: " + redact(err)}
			}
			f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return health.Signal{Status: health.Critical, Details: details, Message: "audit log not writable: " + redact(err)}
			}
			st, err := f.Stat()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return health.Signal{Status: health.Critical, Details: details, Message: "audit log: " + redact(err)}
			}
			details["size_bytes"] = st.Size()
			return health.Signal{Status: health.OK, Details: details, Message: "audit log file writable"}
		}
	case *audit.StoreLog:
		return func(ctx context.Context) health.Signal {
			details := map[string]any{"sink": "history"}
			if _, err := l.Read(ctx, time.Now(), 1); err != nil {
				return health.Signal{Status: health.Critical, Details: details, Message: "audit log in the history store unreachable: " + redact(err)}
			}
			return health.Signal{Status: health.OK, Details: details, Message: "audit log in the history store answers"}
		}
	}
	return nil
}
