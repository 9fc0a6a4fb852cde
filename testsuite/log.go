package testsuite

import (
	"io"
	"log/slog"
	"os"
	"testing"

	"go.temporal.io/sdk/log"
)

// logAdapter keeps the SDK's logs out of test output unless -v is given.
func logAdapter(testing.TB) log.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})))
}
