package info

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

var ctx = context.Background()

func execute(cmd *cobra.Command, args ...string) error {
	return cmdutil.ExecuteForTest(ctx, cmd, args...)
}

func TestArgs(t *testing.T) {
	ios, _, _, _ := cmdutil.TestStreams(true)
	f := cmdutil.NewFactory(ios, "test")
	for name, mk := range map[string]func(*cmdutil.Factory, func(context.Context, *Options) error) *cobra.Command{
		"status": NewCmdStatus, "task-types": NewCmdTaskTypes, "targets": NewCmdTargets,
	} {
		for _, tc := range []struct {
			args []string
			want string
		}{{nil, "table"}, {[]string{"-o", "json"}, "json"}, {[]string{"--output=yaml"}, "yaml"}} {
			var got *Options
			err := execute(mk(f, func(_ context.Context, o *Options) error { got = o; return nil }), tc.args...)
			if err != nil || got.Output != tc.want {
				t.Errorf("%s %v: %v %+v", name, tc.args, err, got)
			}
		}
		for _, bad := range [][]string{{"x"}, {"-o", "xml"}, {"--watch"}} {
			if err := execute(mk(f, nil), bad...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
				t.Errorf("%s %v: %v, want a usage error", name, bad, err)
			}
		}
	}
}

// run runs fn over the real gateway serving the fake service.
func run(t *testing.T, tty bool, output string, fn func(context.Context, *Options) error, prepare func(*apitest.Fake)) (string, error) {
	t.Helper()
	srv := apitest.NewServer(t, nil, api.Options{})
	srv.Fake.SeedDefaults()
	if prepare != nil {
		prepare(srv.Fake)
	}
	ios, _, out, _ := cmdutil.TestStreams(tty)
	f := cmdutil.NewFactory(ios, "test")
	f.APIURL, f.HTTPClient = srv.URL, srv.Client()
	f.Getenv = func(string) string { return "" }
	err := fn(ctx, &Options{IO: ios, APIClient: f.APIClient, APIURL: f.ResolvedAPIURL, Output: output})
	return out.String(), err
}

func TestStatus(t *testing.T) {
	running := func(f *apitest.Fake) {
		f.SeedJob(domain.Job{ID: "daily-maintenance-1", ScheduleID: "daily-maintenance", State: domain.StateRunning})
	}
	out, err := run(t, true, "table", statusRun, running)
	if err != nil || !strings.Contains(out, "Service:        themis-maintenance\n") || !strings.Contains(out, "Temporal:       127.0.0.1:7233\n") ||
		!strings.Contains(out, "Schedules:      4 (") || !strings.Contains(out, "Active jobs:    1\n") || !strings.Contains(out, "API:            http://127.0.0.1:") {
		t.Fatalf("tty %v:\n%s", err, out)
	}
	out, err = run(t, false, "table", statusRun, nil)
	if err != nil || !strings.Contains(out, "task_queue\tthemis-maintenance\n") || !strings.Contains(out, "active_jobs\t0\n") {
		t.Fatalf("piped %v:\n%s", err, out)
	}
	var st api.Status
	out, err = run(t, false, "json", statusRun, running)
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.ActiveJobs != 1 || st.Schedules != 4 {
		t.Fatalf("json %v:\n%s", err, out)
	}
	var y map[string]any
	out, err = run(t, false, "yaml", statusRun, running)
	if err != nil || yaml.Unmarshal([]byte(out), &y) != nil || y["active_jobs"] != 1 || y["task_queue"] != "themis-maintenance" {
		t.Fatalf("yaml %v:\n%s", err, out)
	}
	_, err = run(t, false, "table", statusRun, func(f *apitest.Fake) { f.FailWith(apitest.MethodStatus, domain.ErrUnavailable) })
	if cmdutil.ExitCode(err) != cmdutil.ExitUnavailable {
		t.Fatalf("unavailable: %v", err)
	}
}

func TestTaskTypes(t *testing.T) {
	out, err := run(t, true, "table", taskTypesRun, nil)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || !strings.HasPrefix(lines[0], "NAME") || len(lines) != len(domain.AllTaskTypes())+1 || strings.Contains(out, "\t") {
		t.Fatalf("tty %v:\n%s", err, out)
	}
	out, err = run(t, false, "table", taskTypesRun, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			t.Fatalf("piped line %q", l)
		}
		if f[0] == string(domain.TaskVectorReindex) {
			found = f[2] == "postgres"
		}
	}
	if !found {
		t.Fatalf("vector_reindex with driver postgres not listed:\n%s", out)
	}
	var l api.TaskTypeList
	out, err = run(t, false, "json", taskTypesRun, nil)
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || l.Count != len(domain.AllTaskTypes()) || l.Count != len(l.TaskTypes) {
		t.Fatalf("json %v:\n%s", err, out)
	}
	var y struct {
		TaskTypes []api.TaskTypeInfo `yaml:"task_types"`
		Count     int                `yaml:"count"`
	}
	out, err = run(t, false, "yaml", taskTypesRun, nil)
	if err != nil || yaml.Unmarshal([]byte(out), &y) != nil || y.Count != l.Count || y.TaskTypes[0].Name != l.TaskTypes[0].Name {
		t.Fatalf("yaml %v:\n%s", err, out)
	}
}

func TestTargets(t *testing.T) {
	out, err := run(t, true, "table", targetsRun, nil)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || !strings.HasPrefix(lines[0], "NAME") || len(lines) < 2 || !strings.Contains(out, "10 GiB") || !strings.Contains(out, "yes") {
		t.Fatalf("tty %v:\n%s", err, out)
	}
	out, err = run(t, false, "table", targetsRun, nil)
	f := strings.Split(strings.Split(out, "\n")[0], "\t")
	if err != nil || len(f) != 8 || f[0] != "orders" || f[1] != "postgres" || f[2] != "yes" || f[3] != "" || f[4] != "10737418240" || f[7] != "" {
		t.Fatalf("piped %v %q", err, f)
	}
	var l api.TargetList
	out, err = run(t, false, "json", targetsRun, nil)
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || l.Count == 0 || l.Targets[0].RTOObjectiveMs != apitest.FakeRTOObjectiveMs {
		t.Fatalf("json %v:\n%s", err, out)
	}
	out, err = run(t, false, "yaml", targetsRun, nil)
	if err != nil || !strings.HasPrefix(out, "targets:\n  - name: orders\n    driver: postgres\n") {
		t.Fatalf("yaml %v:\n%s", err, out)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "-", 512: "512 B", 1536: "1.5 KiB", 10 << 30: "10 GiB", 5 << 50: "5 PiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}
