package schedule

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
)

// NewCmdDisable returns `schedule disable <id|name>`. runF replaces
// toggleRun in tests.
func NewCmdDisable(f *cmdutil.Factory, runF func(context.Context, *ToggleOptions) error) *cobra.Command {
	return newToggleCmd(f, runF, false, "disable <id|name>", "Pause a schedule (its jobs stop being started; running jobs go on)")
}
