package health

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"

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
	var got *Options
	capture := func(_ context.Context, o *Options) error { got = o; return nil }
	ios, _, _, _ := cmdutil.TestStreams(true)
	f := cmdutil.NewFactory(ios, "test")
	for _, tc := range []struct {
		args   []string
		failOn string
	}{
		{nil, "critical"},
		{[]string{"--fail-on", "degraded", "-o", "json"}, "degraded"},
		{[]string{"--fail-on=never"}, "never"},
		{[]string{"--check"}, "degraded"},
	} {
		got = nil
		if err := execute(NewCmdHealth(f, capture), tc.args...); err != nil || got.FailOn != tc.failOn {
			t.Fatalf("%v: %v %+v", tc.args, err, got)
		}
	}
	for _, bad := range [][]string{{"x"}, {"-o", "xml"}, {"--watch"}, {"--fail-on", "ok"}, {"--fail-on", ""}} {
		if err := execute(NewCmdHealth(f, capture), bad...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func run(t *testing.T, tty bool, o Options, prepare func(*apitest.Fake)) (string, error) {
	t.Helper()
	srv := apitest.NewServer(t, nil, api.Options{})
	if prepare != nil {
		prepare(srv.Fake)
	}
	ios, _, out, _ := cmdutil.TestStreams(tty)
	f := cmdutil.NewFactory(ios, "test")
	f.APIURL, f.HTTPClient = srv.URL, srv.Client()
	f.Getenv = func(string) string { return "" }
	o.IO, o.APIClient = ios, f.APIClient
	if o.Output == "" {
		o.Output = "table"
	}
	err := healthRun(ctx, &o)
	return out.String(), err
}

func TestRun(t *testing.T) {
	out, err := run(t, true, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "Overall: ✓ healthy (checked ") || !strings.HasPrefix(lines[2], "MODULE") ||
		!strings.Contains(lines[3], "temporal") || !strings.Contains(out, "target:orders") {
		t.Fatalf("tty:\n%s", out)
	}

	degraded := func(f *apitest.Fake) { f.SeedJob(domain.Job{ID: "j1", ScheduleID: "s", State: domain.StateFailed}) }
	out, err = run(t, false, Options{}, degraded)
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "overall\tdegraded\t") || lines[2] != "jobs\tdegraded\t2023-11-14T22:13:20Z\t1 failed job(s) in the last 24 hours" {
		t.Fatalf("piped %q", lines)
	}
	// --fail-on degraded turns a degraded report into exit 3; the report is still printed.
	out, err = run(t, false, Options{FailOn: "degraded"}, degraded)
	if cmdutil.ExitCode(err) != cmdutil.ExitUnhealthy || err.Error() != "overall status is degraded" || !strings.Contains(out, "overall\tdegraded") {
		t.Fatalf("fail-on degraded: %v\n%s", err, out)
	}
	if _, err := run(t, false, Options{FailOn: "degraded"}, nil); err != nil {
		t.Fatalf("fail-on degraded, healthy: %v", err)
	}
	// Critical exits 3 by default, and not under --fail-on never.
	critical := func(f *apitest.Fake) {
		f.SetHealth(api.HealthReport{OverallStatus: api.HealthCritical, Modules: []api.HealthSignal{{Name: "temporal", Status: api.HealthCritical, Message: "unreachable"}}})
	}
	for failOn, want := range map[string]int{"": cmdutil.ExitUnhealthy, "critical": cmdutil.ExitUnhealthy, "degraded": cmdutil.ExitUnhealthy, "never": 0} {
		out, err = run(t, false, Options{FailOn: failOn}, critical)
		if cmdutil.ExitCode(err) != want || !strings.Contains(out, "temporal\tcritical") {
			t.Errorf("critical, --fail-on %q: %v\n%s", failOn, err, out)
		}
	}

	out, err = run(t, false, Options{Output: "json"}, critical)
	var rep api.HealthReport
	if cmdutil.ExitCode(err) != cmdutil.ExitUnhealthy || json.Unmarshal([]byte(out), &rep) != nil || rep.OverallStatus != api.HealthCritical {
		t.Fatalf("json %v %s", err, out)
	}
	out, err = run(t, true, Options{}, func(f *apitest.Fake) { f.SetHealth(api.HealthReport{OverallStatus: api.HealthDegraded}) })
	if err != nil || !strings.Contains(out, "▲ degraded (checked not yet)") {
		t.Fatalf("not yet: %v %s", err, out)
	}
	// An unknown module (a probe that panicked or hung) makes the overall
	// status degraded: exit 0 by default, 3 with --fail-on degraded. An
	// overall unknown (no probe registered) is handled the same way.
	for _, overall := range []string{api.HealthDegraded, api.HealthUnknown} {
		unknown := func(f *apitest.Fake) {
			f.SetHealth(api.HealthReport{OverallStatus: overall, CheckedAtMs: 1_700_000_000_000, Modules: []api.HealthSignal{
				{Name: "temporal", Status: api.HealthOK, Message: "answers", CheckedAtMs: 1_700_000_000_000},
				{Name: "replica-consistency", Status: api.HealthUnknown, Message: "did not answer within 10s", CheckedAtMs: 1_700_000_000_000}}})
		}
		out, err = run(t, true, Options{}, unknown)
		if err != nil || !strings.Contains(out, "? unknown") || !strings.Contains(out, "did not answer within 10s") {
			t.Fatalf("unknown module, overall %s: %v\n%s", overall, err, out)
		}
		for failOn, want := range map[string]int{"": 0, "critical": 0, "degraded": cmdutil.ExitUnhealthy, "never": 0} {
			out, err = run(t, false, Options{FailOn: failOn}, unknown)
			if cmdutil.ExitCode(err) != want || !strings.Contains(out, "replica-consistency\tunknown\t") {
				t.Errorf("unknown module, overall %s, --fail-on %q: %v\n%s", overall, failOn, err, out)
			}
		}
	}
	_, err = run(t, false, Options{}, func(f *apitest.Fake) { f.FailWith(apitest.MethodHealth, domain.ErrUnavailable) })
	if cmdutil.ExitCode(err) != cmdutil.ExitUnavailable {
		t.Fatalf("unavailable: %v", err)
	}
}
