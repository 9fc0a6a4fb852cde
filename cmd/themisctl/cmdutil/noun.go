package cmdutil

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Group makes cmd a command group (the root or a noun such as `schedule`):
// run bare it prints its help; run with an unknown subcommand it fails with
// a usage error naming the closest subcommands. Cobra alone prints the help
// and exits 0 for a group without Run, and reports the root's unknown
// commands over several lines.
func Group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return UnknownCommand(c, args[0])
	}
	return cmd
}

// UnknownCommand is the usage error for an unknown subcommand name of cmd,
// on one line with suggestions: `unknown command "lst" for "themisctl
// schedule"; did you mean "list"?`.
func UnknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	var quoted []string
	if !cmd.DisableSuggestions {
		seen := map[string]bool{}
		for _, s := range cmd.SuggestionsFor(name) {
			if !seen[s] {
				seen[s] = true
				quoted = append(quoted, fmt.Sprintf("%q", s))
			}
		}
	}
	switch {
	case len(quoted) > 0:
		msg += "; did you mean " + strings.Join(quoted, " or ") + "?"
	case cmd.HasAvailableSubCommands():
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
				names = append(names, c.Name())
			}
		}
		msg += "; commands: " + strings.Join(names, ", ")
	}
	return FlagErrorf("%s", msg)
}
