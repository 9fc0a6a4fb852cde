// Package audit holds `themisctl audit`: it reads the API's audit log
// (every write and every denied request, with the principal) through
// GET /audit, which needs the maintenance:admin scope.
package audit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// Options are the inputs of `themisctl audit`.
type Options struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)

	Since  time.Time // zero: no lower bound
	Limit  int
	Output string
}

// NewCmdAudit returns `themisctl audit`. runF replaces auditRun in tests.
func NewCmdAudit(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, APIClient: f.APIClient}
	var since string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: writes and denied requests with their principal",
		Long: "Show the newest audit events (oldest first): every create, update, enable/disable, delete,\n" +
			"run, cancel and drill decision made through the API, and every request refused with 401 or\n" +
			"403. Needs the maintenance:admin scope.",
		Example: `  themisctl audit --since 1h
  themisctl audit --since 2025-01-01T00:00:00Z --limit 1000 -o json | jq 'select(.outcome=="denied")'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cmdutil.CheckOutput(opts.Output); err != nil {
				return err
			}
			t, err := cmdutil.ParseSince(since, time.Now())
			if err != nil {
				return err
			}
			opts.Since = t
			if opts.Limit < 1 || opts.Limit > api.MaxAuditLimit {
				return cmdutil.FlagErrorf("invalid --limit %d: want 1–%d", opts.Limit, api.MaxAuditLimit)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return auditRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events since then: a duration (1h, 30m, 7d), an RFC 3339 time or Unix ms")
	cmd.Flags().IntVarP(&opts.Limit, "limit", "L", api.DefaultAuditLimit, fmt.Sprintf("the newest this many events (1–%d)", api.MaxAuditLimit))
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

func auditRun(ctx context.Context, opts *Options) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	list, err := c.Audit(ctx, opts.Since, opts.Limit)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, list)
	}
	tty := opts.IO.IsTTY
	if list.Count == 0 && tty {
		fmt.Fprintln(opts.IO.ErrOut, "No audit events match.")
		return nil
	}
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.AddHeader("TIME", "PRINCIPAL", "ACTION", "RESOURCE", "OUTCOME", "STATUS", "DETAIL", "REQUEST ID")
	for _, e := range list.Events {
		at, principal, outcome, detail := e.Time.UTC().Format(time.RFC3339Nano), e.Principal, e.Outcome, e.Detail
		if tty {
			at = e.Time.UTC().Format("2006-01-02 15:04:05 UTC")
			if principal == "" {
				principal = "-"
			}
			switch outcome {
			case "success":
				outcome = "✓ success"
			case "failure":
				outcome = "✗ failure"
			case "denied":
				outcome = "⊘ denied"
			}
			detail = cmdutil.Clip(detail, 80)
		}
		tp.AddRow(at, principal, e.Action, e.Resource, outcome, strconv.Itoa(e.Status), detail, e.RequestID)
	}
	if err := tp.Render(); err != nil {
		return err
	}
	if list.Truncated && tty {
		fmt.Fprintf(opts.IO.ErrOut, "Older events were left out: raise --limit (now %d) or narrow --since.\n", opts.Limit)
	}
	return nil
}
