// Package info holds the read-only themisctl commands that describe the
// installation: `status` (the service, its Temporal connection and counts),
// `task-types` (the task catalogue with options and drivers) and `targets`
// (the configured databases, without secrets).
package info

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// Options are the inputs of status, task-types and targets.
type Options struct {
	IO        *cmdutil.IOStreams
	APIClient func() (*client.Client, error)
	// APIURL returns the resolved API URL (status prints it).
	APIURL func() string

	Output string
}

type runFunc func(context.Context, *Options) error

func newCmd(f *cmdutil.Factory, runF, run runFunc, cmd *cobra.Command) *cobra.Command {
	opts := &Options{IO: f.IOStreams, APIClient: f.APIClient, APIURL: f.ResolvedAPIURL}
	cmd.Args = cmdutil.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := cmdutil.CheckOutput(opts.Output); err != nil {
			return err
		}
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return run(cmd.Context(), opts)
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmdutil.Silence(cmd)
}

// NewCmdStatus returns `themisctl status`. runF replaces statusRun in tests.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	return newCmd(f, runF, statusRun, &cobra.Command{
		Use:   "status",
		Short: "Show the service: version, Temporal connection, schedules and active jobs",
		Long: "Show what the API reports about itself (GET /status): its version, the Temporal address,\n" +
			"namespace, task queue and UI, the default target, and how many schedules exist, are\n" +
			"enabled, and how many jobs are running. For the health of each module, see `themisctl health`.",
	})
}

// NewCmdTaskTypes returns `themisctl task-types`. runF replaces
// taskTypesRun in tests.
func NewCmdTaskTypes(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	return newCmd(f, runF, taskTypesRun, &cobra.Command{
		Use:        "task-types",
		Aliases:    []string{"task-type", "tasks"},
		SuggestFor: []string{"tasktypes", "types"},
		Short:      "List the maintenance task types, their options and the drivers that run them",
		Long: "List the task types a schedule can run (GET /task-types), with the engines (drivers)\n" +
			"that implement each one and its options. -o json or -o yaml gives each option's type,\n" +
			"bounds, allowed values and help.",
		Example: `  themisctl task-types
  themisctl task-types -o yaml`,
	})
}

// NewCmdTargets returns `themisctl targets`. runF replaces targetsRun in
// tests.
func NewCmdTargets(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	return newCmd(f, runF, targetsRun, &cobra.Command{
		Use:   "targets",
		Short: "List the configured target databases (without secrets)",
		Long: "List the databases Themis maintains (GET /targets): name, driver, the default target,\n" +
			"the storage quota and the RTO and RPO objectives DR drills are measured against.",
	})
}

func statusRun(ctx context.Context, opts *Options) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, st)
	}
	apiURL := ""
	if opts.APIURL != nil {
		apiURL = opts.APIURL()
	}
	writeFields(opts.IO, [][2]string{
		{"Service", st.Service}, {"Version", st.Version}, {"API", apiURL},
		{"Temporal", st.TemporalAddress}, {"Namespace", st.Namespace}, {"Task queue", st.TaskQueue},
		{"Temporal UI", st.TemporalUIURL}, {"Default target", st.DefaultTarget},
		{"Schedules", fmt.Sprintf("%d (%d enabled)", st.Schedules, st.EnabledSchedules)},
		{"Active jobs", fmt.Sprint(st.ActiveJobs)},
	})
	return nil
}

// writeFields prints aligned "Key: value" lines on a terminal and
// "key<TAB>value" lines otherwise.
func writeFields(ios *cmdutil.IOStreams, rows [][2]string) {
	for _, r := range rows {
		v := strings.Join(strings.Fields(r[1]), " ")
		if ios.IsTTY {
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(ios.Out, "%-15s %s\n", r[0]+":", v)
		} else {
			fmt.Fprintf(ios.Out, "%s\t%s\n", strings.ReplaceAll(strings.ToLower(r[0]), " ", "_"), v)
		}
	}
}

func taskTypesRun(ctx context.Context, opts *Options) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	list, err := c.TaskTypes(ctx)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, api.TaskTypeList{TaskTypes: list, Count: len(list)})
	}
	tty := opts.IO.IsTTY
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.AddHeader("NAME", "TITLE", "DRIVERS", "OPTIONS")
	for _, t := range list {
		names := make([]string, 0, len(t.Options))
		for n := range t.Options {
			names = append(names, n)
		}
		slices.Sort(names)
		drivers, options := strings.Join(t.Drivers, ","), strings.Join(names, ",")
		if tty && drivers == "" {
			drivers = "-"
		}
		if tty && options == "" {
			options = "-"
		}
		tp.AddRow(t.Name, t.Title, drivers, options)
	}
	return tp.Render()
}

func targetsRun(ctx context.Context, opts *Options) error {
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	list, err := c.Targets(ctx)
	if err != nil {
		return err
	}
	if cmdutil.Structured(opts.Output) {
		return cmdutil.PrintStructured(opts.IO.Out, opts.Output, api.TargetList{Targets: list, Count: len(list)})
	}
	tty := opts.IO.IsTTY
	tp := cmdutil.NewTablePrinter(opts.IO)
	tp.AddHeader("NAME", "DRIVER", "DEFAULT", "GROUP", "QUOTA", "RTO OBJECTIVE", "RPO OBJECTIVE", "BLACKOUT")
	for _, t := range list {
		quota, rto, rpo := fmt.Sprint(t.QuotaBytes), fmt.Sprint(t.RTOObjectiveMs), fmt.Sprint(t.RPOObjectiveMs)
		group, blackout := t.Group, ""
		if t.Blackout != nil {
			blackout = t.Blackout.Name + " until " + time.UnixMilli(t.Blackout.EndMs).UTC().Format(time.RFC3339)
		}
		if tty {
			quota, rto, rpo = formatBytes(t.QuotaBytes), cmdutil.FormatDuration(t.RTOObjectiveMs), cmdutil.FormatDuration(t.RPOObjectiveMs)
			group, blackout = orDash(group), orDash(blackout)
		}
		tp.AddRow(t.Name, t.Driver, cmdutil.YesNo(t.Default), group, quota, rto, rpo, blackout)
	}
	return tp.Render()
}

// formatBytes renders a size in binary units ("10 GiB"); 0 is "-".
func formatBytes(n int64) string {
	if n <= 0 {
		return "-"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
