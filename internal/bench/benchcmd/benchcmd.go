// Package benchcmd is what the benchmark commands (bench-pg, bench-restore,
// bench-impact) share once their flags are read: the run under a context
// that an interrupt cancels, the report as text or JSON on stdout, and the
// exit status.
package benchcmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Report is a benchmark's printable result.
type Report interface {
	WriteJSON(w io.Writer) error
	WriteText(w io.Writer) error
}

// Main runs run, prints its report (JSON when asJSON) and exits 1 with
// "name: error" on stderr when the run or the printing fails.
func Main[R Report](name string, asJSON bool, run func(ctx context.Context) (R, error)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx)
	stop()
	if err == nil {
		if asJSON {
			err = rep.WriteJSON(os.Stdout)
		} else {
			err = rep.WriteText(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
