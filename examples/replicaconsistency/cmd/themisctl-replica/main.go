// Command themisctl-replica is themisctl with the replica-consistency
// module linked in: the same commands (dev, server, worker, api and the
// client commands), plus the replica_consistency_check task type on the
// PostgreSQL targets and the replica-consistency health probe. A deployment
// builds its own binary like this one and runs it in place of themisctl
// (workers and API processes alike: a worker must know the task type to
// run it, an API process to accept schedules that name it).
//
//	go build -o bin/themisctl-replica ./examples/replicaconsistency/cmd/themisctl-replica
//	bin/themisctl-replica server --config themis.yaml
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/cmd/themisctl/root"
	"github.com/themis-maintenance/themis/examples/replicaconsistency"
)

func main() {
	// The process commands take --config (default $THEMIS_CONFIG); the
	// probe reads the targets from the file the running command was given.
	configPath := os.Getenv("THEMIS_CONFIG")
	replicaconsistency.MustRegister(replicaconsistency.Options{
		Targets: replicaconsistency.ConfigTargets(func() string { return configPath }),
	})

	os.Exit(root.MainWith(func(cmd *cobra.Command) {
		cmd.PersistentPreRun = func(c *cobra.Command, _ []string) {
			if f := c.Flags().Lookup("config"); f != nil {
				configPath = f.Value.String()
			}
		}
	}))
}
