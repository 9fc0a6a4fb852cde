package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// maxPollFailures is how many polls in a row may fail before Watch gives up.
const maxPollFailures = 5

// quietWait is how long a Watch that draws nothing has the server hold each
// request for the job to end (GET /jobs/{id}?wait=): below the client's
// 30-second timeout.
const quietWait = 20 * time.Second

// WatchOptions configure Watch.
type WatchOptions struct {
	IO       *cmdutil.IOStreams
	Client   *client.Client
	JobID    string
	Interval time.Duration
	// Quiet prints nothing (for -o json and -o yaml); Watch only waits.
	Quiet bool
}

// Watch follows the job until it reaches a terminal state and returns it.
// Each request is a long poll (GET /jobs/{id}?wait=) that the server
// answers as soon as the job ends: a quiet watch holds it 20 s at a time;
// one that draws progress holds it for the interval, then draws the job as
// it is. On a terminal the job view is redrawn in place, each line cut to
// the terminal's width; otherwise one tab-separated progress line is
// printed whenever it changes. A server that answers at once (one without
// the long poll) is polled every interval. Failed requests are retried
// (up to 5 in a row). Cancelling ctx stops watching, not the job.
func Watch(ctx context.Context, o WatchOptions) (domain.Job, error) {
	drawn, last, failures := 0, "", 0
	wait := min(o.Interval, api.MaxJobWait)
	if o.Quiet {
		wait = quietWait
	}
	var j domain.Job
	for {
		began := time.Now()
		pause := o.Interval
		got, err := o.Client.WaitJob(ctx, o.JobID, wait)
		switch {
		case err == nil:
			j, failures = got, 0
			if !o.Quiet {
				if o.IO.IsTTY {
					// Lines are cut to the terminal's width: a wrapped line
					// would take two rows, and moving up by the line count
					// would then leave stale rows behind.
					var view strings.Builder
					n := writeJob(&view, j, true)
					if drawn > 0 {
						fmt.Fprintf(o.IO.Out, "\x1b[%dA\x1b[J", drawn)
					}
					fmt.Fprint(o.IO.Out, cmdutil.FitWidth(view.String(), o.IO.Width()))
					drawn = n
				} else if line := progressLine(j); line != last {
					fmt.Fprintln(o.IO.Out, line)
					last = line
				}
			}
			if j.State.Terminal() {
				return j, nil
			}
			pause -= time.Since(began)
		case ctx.Err() != nil:
			return j, watchInterrupted(o, ctx.Err())
		case client.IsNotFound(err):
			return j, err
		default:
			failures++
			if failures >= maxPollFailures {
				return j, fmt.Errorf("watching job %s: %w", o.JobID, err)
			}
		}
		if pause <= 0 {
			continue
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return j, watchInterrupted(o, ctx.Err())
		case <-t.C:
		}
	}
}

func watchInterrupted(o WatchOptions, err error) error {
	fmt.Fprintf(o.IO.ErrOut, "Stopped watching; job %s goes on. Resume with: themisctl job get %s --watch\n", o.JobID, o.JobID)
	return err
}

// ResultError turns a finished job into the command's outcome: nil for
// succeeded and skipped (outside the window, reported on stderr), an
// exit-code error for failed and cancelled.
func ResultError(io *cmdutil.IOStreams, j domain.Job) error {
	switch j.State {
	case domain.StateFailed:
		msg := fmt.Sprintf("job %s failed", j.ID)
		if j.ErrorMessage != "" {
			msg += ": " + j.ErrorMessage
		}
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New(msg)}
	case domain.StateCancelled:
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("job %s was cancelled", j.ID)}
	case domain.StateSkipped:
		fmt.Fprintf(io.ErrOut, "Job %s was skipped: outside the maintenance window (use --force to run anyway)\n", j.ID)
	}
	return nil
}
