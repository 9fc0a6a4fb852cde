package root

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

// run executes the whole command tree with args and returns the exit code,
// stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := cmdutil.TestStreams(false)
	f := cmdutil.NewFactory(ios, "test")
	f.Getenv = func(string) string { return "" }
	root := NewCmdRoot(f)
	root.SetArgs(args)
	code := cmdutil.Execute(context.Background(), root, ios)
	return code, out.String(), errOut.String()
}

func TestUnknownCommand(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"schedul"}, `error: unknown command "schedul" for "themisctl"; did you mean "schedule"?`},
		{[]string{"jbo"}, `error: unknown command "jbo" for "themisctl"; did you mean "job"?`},
		{[]string{"heath"}, `error: unknown command "heath" for "themisctl"; did you mean "health"?`},
		{[]string{"schedule", "lst"}, `error: unknown command "lst" for "themisctl schedule"; did you mean "list" or "get"?`},
		{[]string{"schedules", "enabel", "daily-maintenance"}, `error: unknown command "enabel" for "themisctl schedule"; did you mean "enable"?`},
		{[]string{"job", "gte", "x"}, `error: unknown command "gte" for "themisctl job"; did you mean "get"?`},
		{[]string{"drill", "aprove"}, `error: unknown command "aprove" for "themisctl drill"; did you mean "approve"?`},
		{[]string{"token", "crate"}, `error: unknown command "crate" for "themisctl token"; did you mean "create"?`},
		{[]string{"job", "frobnicate"}, `error: unknown command "frobnicate" for "themisctl job"; commands: cancel, get, list`},
	} {
		code, stdout, stderr := run(t, tc.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != cmdutil.ExitUsage || stdout != "" || lines[0] != tc.wantErr || len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'themisctl") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, stdout, stderr)
		}
	}
}

// Every group, at the root and below, refuses an unknown subcommand and
// prints its help when run bare.
func TestEveryGroupRefusesUnknown(t *testing.T) {
	ios, _, _, _ := cmdutil.TestStreams(false)
	var groups [][]string
	root := NewCmdRoot(cmdutil.NewFactory(ios, "test"))
	groups = append(groups, nil)
	for _, c := range root.Commands() {
		if c.HasSubCommands() && c.Name() != "help" && c.Name() != "completion" {
			groups = append(groups, []string{c.Name()})
		}
	}
	if len(groups) < 5 {
		t.Fatalf("groups %v", groups)
	}
	for _, g := range groups {
		code, _, stderr := run(t, append(g, "zzzzzz")...)
		if code != cmdutil.ExitUsage || !strings.HasPrefix(stderr, `error: unknown command "zzzzzz"`) {
			t.Errorf("%v: exit %d %q", g, code, stderr)
		}
		code, stdout, stderr := run(t, g...)
		if code != 0 || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("%v bare: exit %d %q %q", g, code, stdout, stderr)
		}
	}
}

// runAPI is run against the real gateway over the fake service.
func runAPI(t *testing.T, prepare func(*apitest.Fake), args ...string) (int, string, string) {
	t.Helper()
	srv := apitest.NewServer(t, nil, api.Options{})
	srv.Fake.SeedDefaults()
	if prepare != nil {
		prepare(srv.Fake)
	}
	ios, _, out, errOut := cmdutil.TestStreams(false)
	f := cmdutil.NewFactory(ios, "test")
	f.Getenv = func(string) string { return "" }
	f.HTTPClient = srv.Client()
	root := NewCmdRoot(f) // binds --api-url to f.APIURL
	root.SetArgs(append([]string{"--api-url", srv.URL}, args...))
	code := cmdutil.Execute(context.Background(), root, ios)
	return code, out.String(), errOut.String()
}

func TestHealthExitCode(t *testing.T) {
	critical := func(f *apitest.Fake) {
		f.SetHealth(api.HealthReport{OverallStatus: api.HealthCritical, Modules: []api.HealthSignal{{Name: "temporal", Status: api.HealthCritical}}})
	}
	degraded := func(f *apitest.Fake) { f.SeedJob(domain.Job{ID: "j1", ScheduleID: "s", State: domain.StateFailed}) }
	for _, tc := range []struct {
		prepare func(*apitest.Fake)
		args    []string
		want    int
	}{
		{nil, []string{"health"}, 0},
		{critical, []string{"health"}, 3},
		{critical, []string{"health", "--fail-on", "never", "-o", "json"}, 0},
		{degraded, []string{"health"}, 0},
		{degraded, []string{"health", "--fail-on", "degraded"}, 3},
		{degraded, []string{"health", "--check"}, 3},
		{nil, []string{"health", "--fail-on", "sometimes"}, cmdutil.ExitUsage},
	} {
		code, stdout, stderr := runAPI(t, tc.prepare, tc.args...)
		if code != tc.want || (code == 3) != strings.HasPrefix(stderr, "error: overall status is ") {
			t.Errorf("%v: exit %d, want %d; stderr %q", tc.args, code, tc.want, stderr)
		}
		if tc.want != cmdutil.ExitUsage && !strings.Contains(stdout, "temporal") {
			t.Errorf("%v: no report: %q", tc.args, stdout)
		}
	}
}

// Every -o accepts yaml, and -o yaml prints the same document as -o json.
func TestOutputYAMLMatchesJSON(t *testing.T) {
	ios, _, _, _ := cmdutil.TestStreams(false)
	var withOutput []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if fl := c.Flags().Lookup("output"); fl != nil {
			withOutput = append(withOutput, c.CommandPath())
			if !strings.Contains(fl.Usage, "yaml") {
				t.Errorf("%s: -o usage %q", c.CommandPath(), fl.Usage)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewCmdRoot(cmdutil.NewFactory(ios, "test")))
	if len(withOutput) < 15 {
		t.Fatalf("commands with -o: %v", withOutput)
	}

	seed := func(f *apitest.Fake) {
		f.SeedJob(domain.Job{ID: "daily-maintenance-1", ScheduleID: "daily-maintenance", State: domain.StateSucceeded})
		f.SeedDrill(domain.Drill{ID: "drill-orders-1", Target: "orders", State: domain.DrillPassed})
	}
	for _, args := range [][]string{
		{"schedule", "list"}, {"schedule", "get", "Daily Maintenance"}, {"job", "list"}, {"job", "get", "daily-maintenance-1"},
		{"drill", "list"}, {"drill", "get", "drill-orders-1"}, {"health"}, {"audit"}, {"status"}, {"task-types"}, {"targets"},
	} {
		var docs [2]any
		for i, format := range []string{"json", "yaml"} {
			code, stdout, stderr := runAPI(t, seed, append(args, "-o", format)...)
			if code != 0 {
				t.Fatalf("%v -o %s: exit %d %s", args, format, code, stderr)
			}
			var v any
			if format == "json" {
				err := json.Unmarshal([]byte(stdout), &v)
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, stdout)
				}
			} else {
				var y any
				if err := yaml.Unmarshal([]byte(stdout), &y); err != nil || strings.HasPrefix(stdout, "{") {
					t.Fatalf("%v: %v\n%s", args, err, stdout)
				}
				raw, _ := json.Marshal(y) // normalise numbers the way JSON reads them
				_ = json.Unmarshal(raw, &v)
			}
			docs[i] = v
		}
		if docs[0] == nil || !reflect.DeepEqual(dropTimes(docs[0]), dropTimes(docs[1])) {
			t.Errorf("%v: json and yaml differ:\n%v\n%v", args, docs[0], docs[1])
		}
	}
}

// dropTimes removes checked_at_ms keys, which differ between two runs of health.
func dropTimes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "checked_at_ms")
		delete(x, "as_of_ms") // each run has a fake of its own
		for _, e := range x {
			dropTimes(e)
		}
	case []any:
		for _, e := range x {
			dropTimes(e)
		}
	}
	return v
}

// complete runs the shell-completion request for words against the fake
// service and returns the candidates (without the directive line).
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	srv := apitest.NewServer(t, nil, api.Options{})
	srv.Fake.SeedDefaults()
	srv.Fake.SeedJob(domain.Job{ID: "daily-maintenance-manual-7", ScheduleID: "daily-maintenance", ScheduleName: "Daily Maintenance", State: domain.StateFailed})
	srv.Fake.SeedDrill(domain.Drill{ID: "drill-orders-1", Target: "orders", State: domain.DrillPassed})
	ios, _, out, _ := cmdutil.TestStreams(false)
	f := cmdutil.NewFactory(ios, "test")
	f.Getenv = func(string) string { return "" }
	f.HTTPClient = srv.Client()
	root := NewCmdRoot(f)
	root.SetArgs(append([]string{"__complete", "--api-url", srv.URL}, words...))
	if code := cmdutil.Execute(context.Background(), root, ios); code != 0 {
		t.Fatalf("%v: exit %d", words, code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("%v: %q", words, out)
	}
	// Cobra offers required flags too; keep the values.
	return slices.DeleteFunc(lines[:len(lines)-1], func(l string) bool { return strings.HasPrefix(l, "-") })
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"schedule", "get", ""}, []string{"daily-maintenance\tDaily Maintenance", "weekly-maintenance\tWeekly Maintenance", "monthly-maintenance\tMonthly Maintenance", "quarterly-maintenance\tQuarterly Maintenance"}},
		{[]string{"schedule", "update", "we"}, []string{"weekly-maintenance\tWeekly Maintenance"}},
		{[]string{"schedule", "run", "daily-maintenance", ""}, nil},
		{[]string{"job", "get", "daily"}, []string{"daily-maintenance-manual-7\tfailed Daily Maintenance"}},
		{[]string{"job", "list", "--schedule", "q"}, []string{"quarterly-maintenance\tQuarterly Maintenance"}},
		{[]string{"drill", "approve", ""}, []string{"drill-orders-1\tpassed orders"}},
		{[]string{"drill", "start", "--target", "ord"}, []string{"orders\tpostgres"}},
		{[]string{"schedule", "create", "--target", "ord"}, []string{"orders\tpostgres"}},
		{[]string{"schedule", "create", "--tasks", "metrics_collection,quota"}, []string{"metrics_collection,quota_check"}},
		{[]string{"schedule", "update", "x", "--tasks", "quota_check,quota"}, nil},
	} {
		got := complete(t, tc.words...)
		if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(tc.want)) {
			t.Errorf("%v: %q, want %q", tc.words, got, tc.want)
		}
	}
	all := complete(t, "schedule", "create", "--tasks", "")
	if len(all) != len(domain.AllTaskTypes()) {
		t.Errorf("task types: %q", all)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
