// Package cmdutil holds what the themisctl client commands share, in the
// style of cli/cli (gh): a Factory handing out lazily built dependencies
// (IO streams, the API client), output helpers (-o table|json|yaml, tables that
// align on a terminal and are tab-separated when piped), errors that carry
// exit codes, and Execute, which runs the root command and turns an error
// into one line on stderr and an exit code.
//
// Wiring in the root command (owned by cmd/themisctl):
//
//	ios := cmdutil.System()
//	f := cmdutil.NewFactory(ios, version)
//	root := &cobra.Command{Use: "themisctl"}
//	f.AddConnectionFlags(root.PersistentFlags()) // --api-url, --token
//	root.AddCommand(schedule.NewCmdSchedule(f), job.NewCmdJob(f), drill.NewCmdDrill(f),
//		health.NewCmdHealth(f, nil), audit.NewCmdAudit(f, nil), token.NewCmdToken(f))
//	os.Exit(cmdutil.Execute(ctx, root, ios))
package cmdutil
