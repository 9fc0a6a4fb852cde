package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
)

var ctx = context.Background()

// ---- list ----

func TestListArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		output  string
		wantErr bool
	}{
		{nil, "table", false},
		{[]string{"-o", "json"}, "json", false},
		{[]string{"--output=yml"}, "", true},
		{[]string{"extra"}, "", true},
	} {
		var got *ListOptions
		err := execute(NewCmdList(argvFactory(true), func(_ context.Context, o *ListOptions) error { got = o; return nil }), tc.args...)
		if tc.wantErr {
			if !isFlagError(err) {
				t.Errorf("%v: err %v, want a usage error", tc.args, err)
			}
			continue
		}
		if err != nil || got.Output != tc.output {
			t.Errorf("%v: %v %+v", tc.args, err, got)
		}
	}
}

func TestListRun(t *testing.T) {
	t.Run("tty", func(t *testing.T) {
		e := newTEnv(t, true)
		e.srv.Fake.SeedDefaults()
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(out, "Daily Maintenance") ||
			!strings.Contains(out, "0 0 1 1,4,7,10 *") || !strings.Contains(out, "02-06") {
			t.Fatalf("table:\n%s", out)
		}
		if strings.Contains(out, "\t") {
			t.Error("terminal table contains tabs")
		}
	})
	t.Run("piped", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("want 4 rows without header:\n%s", e.out)
		}
		f := strings.Split(lines[0], "\t")
		if f[0] != "daily-maintenance" || f[1] != "Daily Maintenance" || f[7] != "metrics_collection,fragmentation_monitoring,quota_check" {
			t.Fatalf("fields %q", f)
		}
	})
	t.Run("json", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var l api.ScheduleList
		if err := json.Unmarshal(e.out.Bytes(), &l); err != nil || l.Count != 4 {
			t.Fatalf("%v %s", err, e.out)
		}
	})
	t.Run("empty", func(t *testing.T) {
		e := newTEnv(t, true)
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if e.out.Len() != 0 || !strings.Contains(e.errOut.String(), "No schedules") {
			t.Fatalf("out %q err %q", e.out, e.errOut)
		}
	})
}

// ---- get ----

func TestGetArgs(t *testing.T) {
	var got *GetOptions
	err := execute(NewCmdGet(argvFactory(true), func(_ context.Context, o *GetOptions) error { got = o; return nil }), "Daily Maintenance", "-o", "json")
	if err != nil || got.Ref != "Daily Maintenance" || got.Output != "json" {
		t.Fatalf("%v %+v", err, got)
	}
	if err := execute(NewCmdGet(argvFactory(true), nil)); !isFlagError(err) {
		t.Fatalf("no argument: %v", err)
	}
}

func TestGetRun(t *testing.T) {
	for _, tty := range []bool{true, false} {
		e := newTEnv(t, tty)
		e.srv.Fake.SeedDefaults()
		for _, ref := range []string{"weekly-maintenance", "Weekly Maintenance"} {
			e.out.Reset()
			if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: ref, Output: "table"}); err != nil {
				t.Fatal(err)
			}
			out := e.out.String()
			if tty && (!strings.Contains(out, "Name:            Weekly Maintenance") || !strings.Contains(out, "Next run:        - (disabled)")) {
				t.Fatalf("tty %q:\n%s", ref, out)
			}
			if !tty && (!strings.Contains(out, "name\tWeekly Maintenance\n") || !strings.Contains(out, "cron\t0 2 * * 0\n")) {
				t.Fatalf("piped %q:\n%s", ref, out)
			}
		}
	}
	e := newTEnv(t, false)
	e.srv.Fake.SeedDefaults()
	if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "daily-maintenance", Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var s domain.Schedule
	if err := json.Unmarshal(e.out.Bytes(), &s); err != nil || s.ID != "daily-maintenance" {
		t.Fatalf("%v %s", err, e.out)
	}
	err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "daily maintenance", Output: "table"})
	if err == nil || !strings.Contains(err.Error(), `did you mean "Daily Maintenance" (daily-maintenance)`) {
		t.Fatalf("unknown name: %v", err)
	}
}

// ---- create ----

func createArgs(t *testing.T, args ...string) (*CreateOptions, error) {
	t.Helper()
	var got *CreateOptions
	err := execute(NewCmdCreate(argvFactory(true), func(_ context.Context, o *CreateOptions) error { got = o; return nil }), args...)
	return got, err
}

func TestCreateArgs(t *testing.T) {
	o, err := createArgs(t, "--name", "Nightly", "--tasks", "metrics_collection, quota_check", "--tasks", "mvcc_cleanup",
		"--target", "analytics", "--cron", "30 1 * * 1-5", "--timezone", "Europe/Berlin", "--window", "22-4",
		"--halt", "--disabled", "--description", "", "--enforce-window=false", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	in := o.Input
	if in.Name != "Nightly" || in.Target != "analytics" || in.Frequency != domain.FrequencyCustom || in.CronExpression != "30 1 * * 1-5" ||
		in.Timezone != "Europe/Berlin" || *in.WindowStartHour != 22 || *in.WindowEndHour != 4 || !*in.HaltOnTaskFailure ||
		*in.Enabled || *in.EnforceWindow || in.Description == nil || *in.Description != "" || o.Output != "json" ||
		!slices.Equal(in.Tasks, []domain.TaskType{"metrics_collection", "quota_check", "mvcc_cleanup"}) {
		t.Fatalf("input %+v", in)
	}
	o, err = createArgs(t, "--name", "Plain", "--tasks", "quota_check")
	if err != nil {
		t.Fatal(err)
	}
	if in := o.Input; in.Frequency != "" || in.Enabled != nil || in.WindowStartHour != nil || in.Description != nil || in.EnforceWindow != nil || in.HaltOnTaskFailure != nil {
		t.Fatalf("unset flags were sent: %+v", in)
	}
	o, err = createArgs(t, "--name", "Graph", "--tasks", "metrics_collection,quota_check,mvcc_cleanup",
		"--depends-on", "quota_check=metrics_collection", "--depends-on", "mvcc_cleanup = metrics_collection, quota_check")
	if err != nil {
		t.Fatal(err)
	}
	if d := o.Input.TaskDependencies; len(d) != 2 || d[0].TaskType != "quota_check" || !slices.Equal(d[0].DependsOn, []domain.TaskType{"metrics_collection"}) ||
		d[1].TaskType != "mvcc_cleanup" || !slices.Equal(d[1].DependsOn, []domain.TaskType{"metrics_collection", "quota_check"}) {
		t.Fatalf("dependencies %+v", d)
	}
	if o, err = createArgs(t, "--file", "-"); err != nil || o.File != "-" {
		t.Fatalf("file: %v %+v", err, o)
	}
	for _, bad := range [][]string{
		{"--tasks", "quota_check"},
		{"--name", "x"},
		{"--name", "x", "--tasks", "quota_check", "--window", "2"},
		{"--name", "x", "--tasks", "quota_check", "--window", "2-24"},
		{"--name", "x", "--tasks", "quota_check", "--window", "a-b"},
		{"--file", "spec.json", "--name", "x"},
		{"--name", "x", "--tasks", "quota_check", "-o", "xml"},
		{"--name", "x", "--tasks", "quota_check", "extra"},
		{"--name", "x", "--tasks", "quota_check", "--depends-on", "quota_check"},
		{"--name", "x", "--tasks", "quota_check", "--depends-on", "=quota_check"},
	} {
		if _, err := createArgs(t, bad...); !isFlagError(err) {
			t.Errorf("%v: err %v, want a usage error", bad, err)
		}
	}
}

func TestCreateRun(t *testing.T) {
	in := client.ScheduleInput{Name: "Nightly vacuum", Tasks: []domain.TaskType{"metrics_collection", "mvcc_cleanup"}}
	t.Run("tty", func(t *testing.T) {
		e := newTEnv(t, true)
		if err := createRun(ctx, &CreateOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Input: in, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if out := e.out.String(); !strings.Contains(out, `✓ Created schedule "Nightly vacuum" (nightly-vacuum)`) || !strings.Contains(out, "Next run:") {
			t.Fatalf("out:\n%s", out)
		}
		if s, ok := e.srv.Fake.Schedule("nightly-vacuum"); !ok || s.CreatedBy != api.AnonymousPrincipal {
			t.Fatal("not created")
		}
	})
	t.Run("piped", func(t *testing.T) {
		e := newTEnv(t, false)
		if err := createRun(ctx, &CreateOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Input: in, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if e.out.String() != "nightly-vacuum\n" {
			t.Fatalf("out %q", e.out)
		}
	})
	t.Run("json from stdin file", func(t *testing.T) {
		e := newTEnv(t, false)
		e.in.WriteString(`{"id":"ignored","created_by":"eve","name":"From stdin","tasks":["quota_check"],"enabled":false}`)
		if err := createRun(ctx, &CreateOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, File: "-", Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var s domain.Schedule
		if err := json.Unmarshal(e.out.Bytes(), &s); err != nil || s.ID != "from-stdin" || s.Enabled || s.CreatedBy != api.AnonymousPrincipal {
			t.Fatalf("%v %s", err, e.out)
		}
	})
	t.Run("file", func(t *testing.T) {
		e := newTEnv(t, true)
		p := filepath.Join(t.TempDir(), "spec.json")
		if err := os.WriteFile(p, []byte(`{"name":"From file","tasks":["quota_check"]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := createRun(ctx, &CreateOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, File: p, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.srv.Fake.Schedule("from-file"); !ok {
			t.Fatal("not created")
		}
		e.in.WriteString(`{not json`)
		if err := createRun(ctx, &CreateOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, File: "-", Output: "table"}); err == nil {
			t.Fatal("invalid JSON accepted")
		}
	})
	t.Run("server refuses", func(t *testing.T) {
		e := newTEnv(t, false)
		bad := client.ScheduleInput{Name: "Bad", Tasks: []domain.TaskType{"quota_check", "vacuum_all"}}
		err := createRun(ctx, &CreateOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Input: bad, Output: "table"})
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Field != "tasks[1]" || cmdutil.ExitCode(err) != cmdutil.ExitFailure {
			t.Fatalf("err %v", err)
		}
		if msg := cmdutil.Message(err); !strings.Contains(msg, "vacuum_all") || strings.Contains(msg, "\n") {
			t.Fatalf("message %q", msg)
		}
		if e.srv.Fake.Counts().Creates != 0 {
			t.Fatal("created")
		}
	})
}

// ---- enable / disable ----

func TestToggleArgs(t *testing.T) {
	var got *ToggleOptions
	capture := func(_ context.Context, o *ToggleOptions) error { got = o; return nil }
	if err := execute(NewCmdEnable(argvFactory(true), capture), "Daily Maintenance"); err != nil || !got.Enabled || got.Ref != "Daily Maintenance" {
		t.Fatalf("enable %v %+v", err, got)
	}
	if err := execute(NewCmdDisable(argvFactory(true), capture), "daily-maintenance", "-o", "json"); err != nil || got.Enabled || got.Output != "json" {
		t.Fatalf("disable %v %+v", err, got)
	}
	if err := execute(NewCmdDisable(argvFactory(true), capture), "a", "b"); !isFlagError(err) {
		t.Fatalf("two args: %v", err)
	}
}

func TestToggleRun(t *testing.T) {
	for _, tty := range []bool{true, false} {
		e := newTEnv(t, tty)
		e.srv.Fake.SeedDefaults()
		if err := toggleRun(ctx, &ToggleOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "Daily Maintenance", Enabled: true, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if s, _ := e.srv.Fake.Schedule("daily-maintenance"); !s.Enabled {
			t.Fatal("not enabled")
		}
		want := "daily-maintenance\ttrue\n"
		if tty {
			want = `✓ Enabled schedule "Daily Maintenance" (daily-maintenance)`
		}
		if !strings.Contains(e.out.String(), want) {
			t.Fatalf("tty=%v out %q", tty, e.out)
		}
		e.out.Reset()
		if err := toggleRun(ctx, &ToggleOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "daily-maintenance", Enabled: false, Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var s domain.Schedule
		if err := json.Unmarshal(e.out.Bytes(), &s); err != nil || s.Enabled {
			t.Fatalf("%v %s", err, e.out)
		}
	}
}

// ---- delete ----

func TestDeleteArgs(t *testing.T) {
	var got *DeleteOptions
	capture := func(_ context.Context, o *DeleteOptions) error { got = o; return nil }
	if err := execute(NewCmdDelete(argvFactory(false), capture), "x", "--yes"); err != nil || !got.Yes || got.Ref != "x" {
		t.Fatalf("%v %+v", err, got)
	}
	got = nil
	if err := execute(NewCmdDelete(argvFactory(true), capture), "x"); err != nil || got.Yes {
		t.Fatalf("interactive: %v %+v", err, got)
	}
	if err := execute(NewCmdDelete(argvFactory(false), capture), "x"); !isFlagError(err) {
		t.Fatalf("piped without --yes: %v", err)
	}
}

func TestDeleteRun(t *testing.T) {
	t.Run("piped --yes", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		if err := deleteRun(ctx, &DeleteOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "Monthly Maintenance", Yes: true}); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.srv.Fake.Schedule("monthly-maintenance"); ok || e.out.String() != "monthly-maintenance\n" {
			t.Fatalf("not deleted; out %q", e.out)
		}
	})
	t.Run("tty confirm", func(t *testing.T) {
		e := newTEnv(t, true)
		e.srv.Fake.SeedDefaults()
		e.in.WriteString("n\n")
		err := deleteRun(ctx, &DeleteOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "monthly-maintenance"})
		if !errors.Is(err, cmdutil.ErrSilent) {
			t.Fatalf("declined: %v", err)
		}
		if _, ok := e.srv.Fake.Schedule("monthly-maintenance"); !ok {
			t.Fatal("deleted without confirmation")
		}
		e.in.WriteString("y\n")
		if err := deleteRun(ctx, &DeleteOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "monthly-maintenance"}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.out.String(), "✓ Deleted schedule") || !strings.Contains(e.errOut.String(), "[y/N]") {
			t.Fatalf("out %q err %q", e.out, e.errOut)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		e := newTEnv(t, false)
		if err := deleteRun(ctx, &DeleteOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "ghost", Yes: true}); err == nil {
			t.Fatal("deleted a ghost")
		}
	})
}

// ---- run ----

func TestRunArgs(t *testing.T) {
	var got *RunOptions
	f := argvFactory(true)
	err := execute(NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil }), "Daily Maintenance", "--force", "--wait")
	if err != nil || got.Ref != "Daily Maintenance" || !got.Force || !got.Wait || got.Interval != f.Interval() {
		t.Fatalf("%v %+v", err, got)
	}
	err = execute(NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil }), "x")
	if err != nil || got.Force || got.Wait || got.DryRun {
		t.Fatalf("%v %+v", err, got)
	}
	err = execute(NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil }), "x", "--dry-run")
	if err != nil || !got.DryRun || got.Force {
		t.Fatalf("%v %+v", err, got)
	}
	err = execute(NewCmdRun(f, func(context.Context, *RunOptions) error { t.Fatal("ran"); return nil }), "x", "--dry-run", "--force")
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "--dry-run and --force exclude each other") {
		t.Fatalf("dry run and force: %v", err)
	}
}

func TestRunRun(t *testing.T) {
	// Job ids are workflows.ManualJobID(schedule, start ms): the fake's clock
	// reads 1700000005000 after the four defaults are seeded.
	t.Run("tty", func(t *testing.T) {
		e := newTEnv(t, true)
		e.srv.Fake.SeedDefaults()
		if err := runRun(ctx, &RunOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "Daily Maintenance", Force: true, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		if !strings.Contains(out, "✓ Started job daily-maintenance-manual-1700000005000 for schedule \"Daily Maintenance\" (forced)") ||
			!strings.Contains(out, "themisctl job get daily-maintenance-manual-1700000005000 --watch") {
			t.Fatalf("out:\n%s", out)
		}
		if j, ok := e.srv.Fake.Job("daily-maintenance-manual-1700000005000"); !ok || !j.Forced {
			t.Fatal("job not forced")
		}
	})
	t.Run("piped", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		if err := runRun(ctx, &RunOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "weekly-maintenance", Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if e.out.String() != "weekly-maintenance-manual-1700000005000\n" {
			t.Fatalf("out %q", e.out)
		}
	})
	t.Run("wait tty", func(t *testing.T) {
		e := newTEnv(t, true)
		e.srv.Fake.SeedDefaults()
		e.srv.Fake.SetAutoProgress(true)
		if err := runRun(ctx, &RunOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "daily-maintenance", Force: true, Wait: true, Interval: e.f.Interval(), Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		if !strings.Contains(out, "\x1b[") || !strings.Contains(out, "✓ succeeded") || !strings.Contains(out, "quota_check") {
			t.Fatalf("out:\n%s", out)
		}
	})
	t.Run("wait piped failing", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		e.srv.Fake.SetAutoProgress(true)
		e.srv.Fake.SetFailingTask(domain.TaskFragmentationMonitoring)
		err := runRun(ctx, &RunOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "daily-maintenance", Wait: true, Interval: e.f.Interval(), Output: "table"})
		if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "fragmentation_monitoring failed") {
			t.Fatalf("err %v", err)
		}
		lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
		if lines[0] != "daily-maintenance-manual-1700000005000" || !strings.HasPrefix(lines[len(lines)-1], "daily-maintenance-manual-1700000005000\tfailed") || strings.Contains(e.out.String(), "\x1b[") {
			t.Fatalf("out:\n%s", e.out)
		}
	})
	t.Run("wait json", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		e.srv.Fake.SetAutoProgress(true)
		if err := runRun(ctx, &RunOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "daily-maintenance", Wait: true, Interval: e.f.Interval(), Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var j domain.Job
		if err := json.Unmarshal(e.out.Bytes(), &j); err != nil || j.State != domain.StateSucceeded {
			t.Fatalf("%v %s", err, e.out)
		}
	})
	t.Run("dry run piped", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		e.srv.Fake.SetAutoProgress(true)
		if err := runRun(ctx, &RunOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "weekly-maintenance", DryRun: true, Interval: e.f.Interval(), Output: "table"}); err != nil {
			t.Fatal(err)
		}
		j, ok := e.srv.Fake.Job("weekly-maintenance-manual-1700000005000")
		if !ok || !j.DryRun || j.Forced {
			t.Fatalf("job %+v: want a dry run, not forced", j)
		}
		if lines := strings.Split(strings.TrimSpace(e.out.String()), "\n"); lines[0] != j.ID || !strings.Contains(e.out.String(), j.ID+"\tsucceeded") {
			t.Fatalf("out:\n%s", e.out)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		o := &RunOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: "daily-maintenance", Output: "table"}
		if err := runRun(ctx, o); err != nil {
			t.Fatal(err)
		}
		if err := runRun(ctx, o); !client.IsConflict(err) {
			t.Fatalf("second run: %v", err)
		}
	})
}

// The whole noun through cmdutil.Execute: exit codes and one-line errors.
func TestScheduleCommandExecute(t *testing.T) {
	e := newTEnv(t, false)
	e.srv.Fake.SeedDefaults()
	root := NewCmdSchedule(e.f)
	if code := cmdutil.Execute(ctx, withArgs(root, "run", "Daily Maintenance", "--force"), e.f.IOStreams); code != 0 {
		t.Fatalf("exit %d: %s", code, e.errOut)
	}
	e.errOut.Reset()
	if code := cmdutil.Execute(ctx, withArgs(NewCmdSchedule(e.f), "get", "Nope"), e.f.IOStreams); code != cmdutil.ExitFailure {
		t.Fatalf("unknown schedule exit %d", code)
	}
	if got := e.errOut.String(); got != "error: no schedule with id or name \"Nope\"\n" {
		t.Fatalf("stderr %q", got)
	}
	e.errOut.Reset()
	if code := cmdutil.Execute(ctx, withArgs(NewCmdSchedule(e.f), "create", "--name", "x", "--bogus"), e.f.IOStreams); code != cmdutil.ExitUsage {
		t.Fatalf("bad flag exit %d", code)
	}
	if got := e.errOut.String(); !strings.Contains(got, "unknown flag: --bogus") || !strings.Contains(got, "--help") || strings.Contains(got, "Flags:") {
		t.Fatalf("stderr %q", got)
	}
}

// ---- update ----

func updateArgs(t *testing.T, args ...string) (*UpdateOptions, error) {
	t.Helper()
	var got *UpdateOptions
	err := execute(NewCmdUpdate(argvFactory(true), func(_ context.Context, o *UpdateOptions) error { got = o; return nil }), args...)
	return got, err
}

func TestUpdateArgs(t *testing.T) {
	got, err := updateArgs(t, "Daily Maintenance", "--name", "Nightly", "--window", "22-4", "--cron", "15 3 * * *",
		"--enabled=false", "--tasks", "metrics_collection, quota_check", "--set", "halt_on_task_failure=true",
		"--set", "description=a=b", "--option", "mvcc_cleanup.dead_tuple_threshold=5000",
		"--set", "task_options.quota_check.warn_pct=", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "Nightly", "window_start_hour": 22, "window_end_hour": 4, "cron_expression": "15 3 * * *",
		"frequency": "custom", "enabled": false, "tasks": []string{"metrics_collection", "quota_check"},
		"halt_on_task_failure": true, "description": "a=b"}
	if got.Ref != "Daily Maintenance" || got.Output != "yaml" || fmt.Sprint(got.Patch) != fmt.Sprint(want) {
		t.Fatalf("patch %v\nwant  %v", got.Patch, want)
	}
	wantOpts := map[domain.TaskType]map[string]any{"mvcc_cleanup": {"dead_tuple_threshold": float64(5000)}, "quota_check": {"warn_pct": nil}}
	if fmt.Sprint(got.Options) != fmt.Sprint(wantOpts) {
		t.Fatalf("options %v", got.Options)
	}
	got, err = updateArgs(t, "x", "--set", "window_start_hour=3", "--set", "tasks=quota_check", "--set", `task_options={"quota_check":{"warn_pct":70}}`, "--set", "name=123")
	if err != nil || got.Patch["window_start_hour"] != 3 || got.Patch["name"] != "123" || fmt.Sprint(got.Patch["tasks"]) != "[quota_check]" ||
		fmt.Sprint(got.Patch["task_options"]) != "map[quota_check:map[warn_pct:70]]" {
		t.Fatalf("%v %v", err, got.Patch)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"x"}, "nothing to change"},
		{[]string{}, "missing argument"},
		{[]string{"x", "--set", "windw_start_hour=3"}, `did you mean "window_start_hour"?`},
		{[]string{"x", "--set", "id=foo"}, `unknown schedule field "id"`},
		{[]string{"x", "--set", "enabled=maybe"}, "want true or false"},
		{[]string{"x", "--set", "window_end_hour=24"}, "want an hour 0-23"},
		{[]string{"x", "--set", "novalue"}, "want key=value"},
		{[]string{"x", "--name", "a", "--set", "name=b"}, "name is given twice"},
		{[]string{"x", "--option", "quota_check=1"}, "want TASK.OPTION=VALUE"},
		{[]string{"x", "--option", "quota_chek.warn_pct=1"}, `did you mean "quota_check"?`},
		{[]string{"x", "--set", "task_options={}", "--option", "quota_check.warn_pct=1"}, "replaces every option"},
		{[]string{"x", "--set", "task_options=[1]"}, "want a JSON object"},
		{[]string{"x", "--window", "2"}, "invalid --window"},
		{[]string{"x", "--tasks", " , "}, "one or more of"},
		{[]string{"x", "--name", "a", "-o", "xml"}, "invalid --output"},
	} {
		if _, err := updateArgs(t, tc.args...); !isFlagError(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want a usage error with %q", tc.args, err, tc.msg)
		}
	}
}

func TestUpdateRun(t *testing.T) {
	e := newTEnv(t, false)
	e.srv.Fake.SeedDefaults()
	up := func(ref, output string, patch map[string]any, options map[domain.TaskType]map[string]any) (domain.Schedule, error) {
		e.out.Reset()
		err := updateRun(ctx, &UpdateOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Ref: ref, Patch: patch, Options: options, Output: output})
		if err != nil {
			return domain.Schedule{}, err
		}
		c, _ := e.f.APIClient()
		return c.GetSchedule(ctx, "daily-maintenance")
	}
	s, err := up("Daily Maintenance", "table", map[string]any{"window_start_hour": 1, "window_end_hour": 5, "halt_on_task_failure": true}, nil)
	if err != nil || s.WindowStartHour != 1 || s.WindowEndHour != 5 || !s.HaltOnTaskFailure || s.Name != "Daily Maintenance" || e.out.String() != "daily-maintenance\n" {
		t.Fatalf("%v %+v %q", err, s, e.out)
	}
	// Single options merge into the current ones; an empty value removes one.
	s, err = up("daily-maintenance", "table", nil, map[domain.TaskType]map[string]any{domain.TaskQuotaCheck: {"alert_pct": float64(70)}})
	if err != nil || fmt.Sprint(s.TaskOptions) != "map[quota_check:map[alert_pct:70]]" {
		t.Fatalf("options: %v %v", err, s.TaskOptions)
	}
	s, err = up("daily-maintenance", "table", nil, map[domain.TaskType]map[string]any{domain.TaskFragmentationMonitoring: {"high_threshold_pct": float64(40), "min_size_bytes": float64(1 << 20)}})
	if err != nil || fmt.Sprint(s.TaskOptions) != "map[fragmentation_monitoring:map[high_threshold_pct:40 min_size_bytes:1.048576e+06] quota_check:map[alert_pct:70]]" {
		t.Fatalf("merge: %v %v", err, s.TaskOptions)
	}
	s, err = up("daily-maintenance", "table", nil, map[domain.TaskType]map[string]any{domain.TaskFragmentationMonitoring: {"min_size_bytes": nil}, domain.TaskQuotaCheck: {"alert_pct": nil}})
	if err != nil || fmt.Sprint(s.TaskOptions) != "map[fragmentation_monitoring:map[high_threshold_pct:40]]" {
		t.Fatalf("remove: %v %v", err, s.TaskOptions)
	}
	if _, err := up("daily-maintenance", "yaml", map[string]any{"timezone": "Europe/Berlin"}, nil); err != nil || !strings.Contains(e.out.String(), "timezone: Europe/Berlin\n") {
		t.Fatalf("yaml: %v\n%s", err, e.out)
	}
	// The server's refusals come back as API errors (exit 1), not usage errors.
	_, err = up("daily-maintenance", "table", nil, map[domain.TaskType]map[string]any{domain.TaskQuotaCheck: {"alert_pct": float64(1000)}})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("bad option: %v", err)
	}
	if _, err := up("no such schedule", "table", map[string]any{"enabled": false}, nil); err == nil || !strings.Contains(err.Error(), "no schedule") {
		t.Fatalf("unknown ref: %v", err)
	}
}
