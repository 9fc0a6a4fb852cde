package cmdutil

import (
	"cmp"
	"fmt"
	"slices"
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
		suggestions := cmd.SuggestionsFor(name)
		// Closest first (cobra lists them in command order).
		slices.SortStableFunc(suggestions, func(a, b string) int {
			return cmp.Compare(Distance(strings.ToLower(name), a), Distance(strings.ToLower(name), b))
		})
		for _, s := range suggestions {
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

// Distance is the Levenshtein distance of a and b (bytes).
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
