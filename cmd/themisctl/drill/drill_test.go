package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/internal/auth"
	"github.com/themis-maintenance/themis/internal/config"
)

var ctx = context.Background()

type tenv struct {
	f           *cmdutil.Factory
	srv         *apitest.Server
	out, errOut *bytes.Buffer
}

// newTEnv wires a factory to the real gateway over the fake service, with
// every exchange validated against the OpenAPI document.
func newTEnv(t *testing.T, tty bool) *tenv {
	t.Helper()
	srv := apitest.NewServer(t, nil, api.Options{})
	ios, _, out, errOut := cmdutil.TestStreams(tty)
	f := cmdutil.NewFactory(ios, "test")
	f.APIURL = srv.URL
	f.HTTPClient = srv.Client()
	f.PollInterval = time.Millisecond
	f.Getenv = func(string) string { return "" }
	return &tenv{f: f, srv: srv, out: out, errOut: errOut}
}

func argvFactory() *cmdutil.Factory {
	ios, _, _, _ := cmdutil.TestStreams(true)
	f := cmdutil.NewFactory(ios, "test")
	f.PollInterval = 5 * time.Millisecond
	return f
}

func execute(cmd *cobra.Command, args ...string) error {
	return cmdutil.ExecuteForTest(ctx, cmd, args...)
}

func isUsage(err error) bool { return cmdutil.ExitCode(err) == cmdutil.ExitUsage }

// awaiting starts a drill in the fake and lets it reach approval start.
func awaiting(t *testing.T, e *tenv, target string) domain.Drill {
	t.Helper()
	d, err := e.srv.Fake.StartDrill(ctx, target, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if d, err = e.srv.Fake.GetDrill(ctx, d.ID); err != nil || d.Awaiting != domain.ApprovalStart {
		t.Fatalf("%+v %v", d, err)
	}
	return d
}

func TestNewCmdDrill(t *testing.T) {
	var names []string
	for _, c := range NewCmdDrill(argvFactory()).Commands() {
		names = append(names, c.Name())
	}
	if strings.Join(names, ",") != "abort,approve,get,list,reject,start,trend" {
		t.Fatalf("subcommands %v", names)
	}
}

// ---- start ----

func TestStartArgs(t *testing.T) {
	var got *StartOptions
	capture := func(_ context.Context, o *StartOptions) error { got = o; return nil }
	if err := execute(NewCmdStart(argvFactory(), capture), "--target", "analytics", "--wait-step", "-o", "json"); err != nil ||
		got.Target != "analytics" || !got.WaitStep || got.Output != "json" || got.Interval != 5*time.Millisecond {
		t.Fatalf("%v %+v", err, got)
	}
	if err := execute(NewCmdStart(argvFactory(), capture)); err != nil || got.Target != "" || got.WaitStep {
		t.Fatalf("defaults %v %+v", err, got)
	}
	if err := execute(NewCmdStart(argvFactory(), capture), "--strategy", "replica_clone"); err != nil || got.Strategy != domain.DrillStrategyReplicaClone {
		t.Fatalf("--strategy %v %+v", err, got)
	}
	for _, bad := range [][]string{{"orders"}, {"-o", "xml"}, {"--wait"}, {"--strategy", "pitr"}} {
		if err := execute(NewCmdStart(argvFactory(), capture), bad...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestStartRun(t *testing.T) {
	t.Run("tty wait-step", func(t *testing.T) {
		e := newTEnv(t, true)
		if err := startRun(ctx, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Target: "orders", WaitStep: true, Interval: time.Millisecond, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		for _, want := range []string{"✓ Started drill drill-orders-", "⏸ awaiting approval start", "preflight", "themisctl drill approve drill-orders-", "--step start"} {
			if !strings.Contains(out, want) {
				t.Errorf("lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("strategy", func(t *testing.T) {
		e := newTEnv(t, true)
		if err := startRun(ctx, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Target: "orders", Strategy: "replica_clone", Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if out := e.out.String(); !strings.Contains(out, "Strategy: replica_clone") {
			t.Errorf("out:\n%s", out)
		}
	})
	t.Run("piped", func(t *testing.T) {
		e := newTEnv(t, false)
		if err := startRun(ctx, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if id := strings.TrimSpace(e.out.String()); !strings.HasPrefix(id, "drill-orders-") || strings.Contains(id, "\n") {
			t.Fatalf("out %q", e.out)
		}
	})
	t.Run("piped wait-step", func(t *testing.T) {
		e := newTEnv(t, false)
		if err := startRun(ctx, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, WaitStep: true, Interval: time.Millisecond, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		f := strings.Split(strings.TrimSpace(e.out.String()), "\t")
		if len(f) != 3 || f[1] != string(domain.DrillAwaiting) || f[2] != "start" {
			t.Fatalf("out %q", e.out)
		}
	})
	t.Run("json", func(t *testing.T) {
		e := newTEnv(t, false)
		if err := startRun(ctx, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Target: "analytics", WaitStep: true, Interval: time.Millisecond, Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var d domain.Drill
		if err := json.Unmarshal(e.out.Bytes(), &d); err != nil || d.Target != "analytics" || d.Awaiting != "start" {
			t.Fatalf("%v %s", err, e.out)
		}
	})
	t.Run("unknown target", func(t *testing.T) {
		e := newTEnv(t, false)
		err := startRun(ctx, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Target: "nowhere", Output: "table"})
		if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(cmdutil.Message(err), `unknown target "nowhere"`) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("drill ends before approval", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.FailWith(apitest.MethodGetDrill, domain.ErrUnavailable)
		err := startRun(ctx, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, WaitStep: true, Interval: time.Millisecond, Output: "table"})
		if cmdutil.ExitCode(err) != cmdutil.ExitUnavailable {
			t.Fatalf("err %v (exit %d)", err, cmdutil.ExitCode(err))
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		e := newTEnv(t, false)
		c, cancel := context.WithCancel(ctx)
		cancel()
		err := startRun(c, &StartOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, WaitStep: true, Interval: time.Millisecond, Output: "table"})
		if cmdutil.ExitCode(err) != cmdutil.ExitInterrupted {
			t.Fatalf("err %v", err)
		}
	})
}

func TestWaitStepReportsFinishedDrill(t *testing.T) {
	e := newTEnv(t, false)
	e.srv.Fake.SeedDrill(domain.Drill{ID: "drill-orders-5", Target: "orders", State: domain.DrillFailed, Step: "report",
		Reason: "preflight failed: no backup", Steps: []domain.DrillStep{}, Approvals: []domain.Approval{}})
	c, _ := e.f.APIClient()
	d, err := WaitStep(ctx, c, "drill-orders-5", time.Millisecond)
	if err != nil || d.State != domain.DrillFailed {
		t.Fatalf("%+v %v", d, err)
	}
	if _, err := WaitStep(ctx, c, "drill-orders-6", time.Millisecond); !client.IsNotFound(err) {
		t.Fatalf("unknown: %v", err)
	}
}

// ---- list ----

func TestListArgs(t *testing.T) {
	var got *ListOptions
	capture := func(_ context.Context, o *ListOptions) error { got = o; return nil }
	if err := execute(NewCmdList(argvFactory(), capture), "-L", "3", "-o", "json"); err != nil || got.Limit != 3 || got.Output != "json" {
		t.Fatalf("%v %+v", err, got)
	}
	for _, bad := range [][]string{{"--limit", "0"}, {"--limit", "201"}, {"x"}} {
		if err := execute(NewCmdList(argvFactory(), capture), bad...); !isUsage(err) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestListRun(t *testing.T) {
	for _, tty := range []bool{true, false} {
		e := newTEnv(t, tty)
		d := awaiting(t, e, "orders")
		if _, err := e.srv.Fake.DecideDrill(ctx, d.ID, true, "start", "", "ops"); err != nil {
			t.Fatal(err)
		}
		awaiting(t, e, "analytics")
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Limit: 10, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
		if tty {
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "drill-analytics-") ||
				!strings.Contains(lines[2], "2m0s") || !strings.Contains(lines[2], "yes") {
				t.Fatalf("tty table:\n%s", e.out)
			}
		} else {
			f := strings.Split(lines[1], "\t")
			if len(lines) != 2 || f[0] != d.ID || f[2] != string(domain.DrillAwaiting) || f[5] != "120000" || f[7] != "true" {
				t.Fatalf("piped %q", lines)
			}
		}
	}
	e := newTEnv(t, true)
	if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Limit: 10, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var l api.DrillList
	if err := json.Unmarshal(e.out.Bytes(), &l); err != nil || l.Count != 0 || l.Drills == nil {
		t.Fatalf("%v %s", err, e.out)
	}
}

// ---- get ----

func TestGetArgs(t *testing.T) {
	var got *GetOptions
	capture := func(_ context.Context, o *GetOptions) error { got = o; return nil }
	if err := execute(NewCmdGet(argvFactory(), capture), "drill-orders-1"); err != nil || got.ID != "drill-orders-1" {
		t.Fatalf("%v %+v", err, got)
	}
	for _, bad := range [][]string{{}, {"../x"}, {"a", "b"}} {
		if err := execute(NewCmdGet(argvFactory(), capture), bad...); !isUsage(err) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestGetRun(t *testing.T) {
	t.Run("tty", func(t *testing.T) {
		e := newTEnv(t, true)
		e.srv.Fake.SetDrillMeasurement(20*60_000, 30_000)
		d := awaiting(t, e, "orders")
		if _, err := e.srv.Fake.DecideDrill(ctx, d.ID, true, "start", "CHG-7", "alice"); err != nil {
			t.Fatal(err)
		}
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: d.ID, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		for _, want := range []string{"Drill " + d.ID, "⏸ awaiting approval complete", "RTO:          20m0s (objective 15m0s) ✗ missed",
			"RPO:          30s (objective 1m0s) ✓ met", "Passed:       no", "STEP", "preflight", "restore", "15m0s", "await_start",
			"APPROVAL", "alice", "CHG-7", "--step complete",
			"Strategy:     backup_restore", "Backup:       backup-1 taken ", "(30s before the failure instant)",
			"Restored:     200.0 MB in 10m0s (0.3 MB/s)", "RPO from:     the restored backup's time", "Clock:        host fake-host"} {
			if !strings.Contains(out, want) {
				t.Errorf("lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("piped", func(t *testing.T) {
		e := newTEnv(t, false)
		d := awaiting(t, e, "orders")
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: d.ID, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		if !strings.Contains(out, "awaiting_approval\tstart\n") || !strings.Contains(out, "rto_objective_ms\t900000\n") ||
			!strings.Contains(out, "\nstep\tpreflight\tsucceeded\t") {
			t.Fatalf("out:\n%s", out)
		}
	})
	t.Run("json and not found", func(t *testing.T) {
		e := newTEnv(t, false)
		d := awaiting(t, e, "orders")
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: d.ID, Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var got domain.Drill
		if err := json.Unmarshal(e.out.Bytes(), &got); err != nil || got.ID != d.ID {
			t.Fatalf("%v %s", err, e.out)
		}
		err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "drill-none-1", Output: "table"})
		if !client.IsNotFound(err) || cmdutil.ExitCode(err) != cmdutil.ExitFailure {
			t.Fatalf("err %v", err)
		}
	})
}

// ---- approve, reject ----

func TestDecideArgs(t *testing.T) {
	var got *DecideOptions
	capture := func(_ context.Context, o *DecideOptions) error { got = o; return nil }
	if err := execute(NewCmdApprove(argvFactory(), capture), "drill-orders-1", "--step", "start", "--comment", "CHG-1", "-o", "json"); err != nil ||
		!got.Approve || got.Step != "start" || got.Comment != "CHG-1" || got.ID != "drill-orders-1" {
		t.Fatalf("%v %+v", err, got)
	}
	if err := execute(NewCmdReject(argvFactory(), capture), "drill-orders-1", "-s", "complete", "-m", "no"); err != nil || got.Approve || got.Step != "complete" {
		t.Fatalf("%v %+v", err, got)
	}
	for _, bad := range [][]string{{"drill-orders-1"}, {"drill-orders-1", "--step", "finish"}, {"--step", "start"},
		{"a/b", "--step", "start"}, {"drill-orders-1", "--step", "start", "--comment", strings.Repeat("c", 2001)}} {
		if err := execute(NewCmdApprove(argvFactory(), capture), bad...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestDecideRun(t *testing.T) {
	for _, tty := range []bool{true, false} {
		e := newTEnv(t, tty)
		d := awaiting(t, e, "orders")
		o := &DecideOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: d.ID, Approve: true, Step: "start", Comment: "go", Output: "table"}
		if err := decideRun(ctx, o); err != nil {
			t.Fatal(err)
		}
		want := d.ID + "\tawaiting_approval\tcomplete\n"
		if tty {
			want = "✓ Approved step \"start\" of drill " + d.ID + "; it is now ⏸ awaiting approval complete\n"
		}
		if !strings.HasPrefix(e.out.String(), want) {
			t.Fatalf("tty=%v out %q", tty, e.out)
		}
		// Approving start again: 409, exit 1, the server's reason on one line.
		err := decideRun(ctx, o)
		if !client.IsConflict(err) || cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(cmdutil.Message(err), "awaiting complete") {
			t.Fatalf("second approve: %v", err)
		}
		e.out.Reset()
		o.Approve, o.Step, o.Comment = false, "complete", "RPO off"
		if err := decideRun(ctx, o); err != nil {
			t.Fatal(err)
		}
		if dd, _ := e.srv.Fake.Drill(d.ID); dd.State != domain.DrillRejected || dd.Approvals[1].Approver != api.AnonymousPrincipal {
			t.Fatalf("%+v", dd)
		}
	}
	e := newTEnv(t, false)
	d := awaiting(t, e, "orders")
	if err := decideRun(ctx, &DecideOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: d.ID, Approve: true, Step: "start", Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var got domain.Drill
	if err := json.Unmarshal(e.out.Bytes(), &got); err != nil || got.Awaiting != "complete" || !got.Measured {
		t.Fatalf("%v %s", err, e.out)
	}
}

// ---- abort ----

func TestAbortArgs(t *testing.T) {
	var got *AbortOptions
	capture := func(_ context.Context, o *AbortOptions) error { got = o; return nil }
	if err := execute(NewCmdAbort(argvFactory(), capture), "drill-orders-1", "--reason", "incident"); err != nil || got.Reason != "incident" {
		t.Fatalf("%v %+v", err, got)
	}
	for _, bad := range [][]string{{"drill-orders-1"}, {"drill-orders-1", "--reason", "  "}, {"--reason", "x"}} {
		if err := execute(NewCmdAbort(argvFactory(), capture), bad...); !isUsage(err) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestAbortRun(t *testing.T) {
	for _, tty := range []bool{true, false} {
		e := newTEnv(t, tty)
		d := awaiting(t, e, "orders")
		o := &AbortOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: d.ID, Reason: "incident", Output: "table"}
		if err := abortRun(ctx, o); err != nil {
			t.Fatal(err)
		}
		want := d.ID + "\taborted\n"
		if tty {
			want = "✓ Abort requested for drill " + d.ID + "; it is now ⊘ aborted (cleaned up: yes)\n"
		}
		if e.out.String() != want {
			t.Fatalf("tty=%v out %q", tty, e.out)
		}
		if err := abortRun(ctx, o); !client.IsConflict(err) {
			t.Fatalf("second abort: %v", err)
		}
	}
}

// An admin-only command with a write token: exit 4 and the server's reason.
func TestForbiddenExitCode(t *testing.T) {
	const tok = "thm_drill-writer-0123456789abcdefghijklmnopqrstuv"
	authn, err := auth.New(config.AuthConfig{Tokens: []config.TokenConfig{
		{Name: "ci", SHA256: auth.Digest(tok), Scopes: []string{api.ScopeWrite}}}}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, nil, api.Options{Authenticator: authn.Middleware()})
	ios, _, _, _ := cmdutil.TestStreams(false)
	f := cmdutil.NewFactory(ios, "test")
	f.APIURL, f.HTTPClient, f.Token = srv.URL, srv.Client(), tok
	err = startRun(ctx, &StartOptions{IO: ios, APIClient: f.APIClient, Output: "table"})
	if cmdutil.ExitCode(err) != cmdutil.ExitAuth || !strings.Contains(cmdutil.Message(err), "lacks the maintenance:admin scope") {
		t.Fatalf("err %v", err)
	}
	if srv.Fake.Counts().DrillStarts != 0 {
		t.Fatal("started")
	}
}

// get --watch follows the drill by long polls until it ends: a line per
// change of state or step, then the drill.
func TestGetWatch(t *testing.T) {
	e := newTEnv(t, false)
	d := awaiting(t, e, "orders")
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = e.srv.Fake.DecideDrill(ctx, d.ID, true, domain.ApprovalStart, "go", "ops")
		time.Sleep(200 * time.Millisecond)
		_, _ = e.srv.Fake.DecideDrill(ctx, d.ID, true, domain.ApprovalComplete, "ok", "ops")
	}()
	o := &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: d.ID, Output: "table", Watch: true}
	if err := getRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{"\tawaiting_approval\tawait_start\tstart\n", "\tawaiting_approval\tawait_complete\tcomplete\n", "\tpassed\treport\t\n", "approval\tstart\tapproved\tops\t"} {
		if !strings.Contains(out, want) {
			t.Errorf("watch output lacks %q:\n%s", want, out)
		}
	}
}
