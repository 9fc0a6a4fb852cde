package cmdutil

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
)

// completionTimeout bounds the API calls made to complete a word: a shell
// waits for them.
const completionTimeout = 3 * time.Second

// lister fetches completion candidates ("value" or "value\tdescription").
type lister func(ctx context.Context, c *client.Client) ([]cobra.Completion, error)

// complete builds a completion function over the API. Only the first
// positional argument is completed when arg is true; errors (no API, no
// token) complete nothing rather than failing the shell.
func complete(f *Factory, arg bool, list lister) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if arg && len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		c, err := f.APIClient()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		all, err := list(ctx, c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, s := range all {
			if strings.HasPrefix(s, toComplete) {
				out = append(out, s)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteScheduleArg completes a schedule id (described by its name) as
// the first argument.
func CompleteScheduleArg(f *Factory) cobra.CompletionFunc { return complete(f, true, listSchedules) }

// CompleteScheduleFlag completes a flag's value with schedule ids.
func CompleteScheduleFlag(f *Factory) cobra.CompletionFunc { return complete(f, false, listSchedules) }

func listSchedules(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	list, err := c.ListSchedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, len(list))
	for i, s := range list {
		out[i] = cobra.CompletionWithDesc(s.ID, s.Name)
	}
	return out, nil
}

// CompleteJobArg completes a job id (the newest jobs first, described by
// schedule and state) as the first argument.
func CompleteJobArg(f *Factory) cobra.CompletionFunc {
	return complete(f, true, func(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
		page, err := c.ListJobs(ctx, api.JobFilter{Limit: api.MaxJobLimit})
		if err != nil {
			return nil, err
		}
		out := make([]cobra.Completion, len(page.Jobs))
		for i, j := range page.Jobs {
			out[i] = cobra.CompletionWithDesc(j.ID, string(j.State)+" "+j.ScheduleName)
		}
		return out, nil
	})
}

// CompleteDrillArg completes a drill id as the first argument.
func CompleteDrillArg(f *Factory) cobra.CompletionFunc {
	return complete(f, true, func(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
		list, err := c.ListDrills(ctx, 0)
		if err != nil {
			return nil, err
		}
		out := make([]cobra.Completion, len(list))
		for i, d := range list {
			out[i] = cobra.CompletionWithDesc(d.ID, string(d.State)+" "+d.Target)
		}
		return out, nil
	})
}

// CompleteTargets completes a flag's value with the configured targets.
func CompleteTargets(f *Factory) cobra.CompletionFunc {
	return complete(f, false, func(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
		list, err := c.Targets(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]cobra.Completion, len(list))
		for i, t := range list {
			out[i] = cobra.CompletionWithDesc(t.Name, t.Driver)
		}
		return out, nil
	})
}

// CompleteTaskTypes completes a comma-separated list of task types (the
// --tasks flag): the word after the last comma, keeping what comes before.
// The types come from the API (so registered ones appear), else from the
// built-in catalogue.
func CompleteTaskTypes(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		done, _ := cutLast(toComplete, ",")
		var names []string
		if c, err := f.APIClient(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
			defer cancel()
			if list, err := c.TaskTypes(ctx); err == nil {
				for _, t := range list {
					names = append(names, t.Name)
				}
			}
		}
		if names == nil {
			for _, t := range domain.AllTaskTypes() {
				names = append(names, string(t))
			}
		}
		chosen := map[string]bool{}
		for _, t := range strings.Split(done, ",") {
			chosen[strings.TrimSpace(t)] = true
		}
		prefix := ""
		if done != "" {
			prefix = done + ","
		}
		var out []cobra.Completion
		for _, n := range names {
			if cand := prefix + n; !chosen[n] && strings.HasPrefix(cand, toComplete) {
				out = append(out, cand)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// cutLast splits s around its last sep: ("a,b,c", ",") is ("a,b", "c");
// without sep it is ("", s).
func cutLast(s, sep string) (string, string) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+len(sep):]
}
