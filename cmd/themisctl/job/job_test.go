package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/domain"
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

func isFlagError(err error) bool {
	var fe *cmdutil.FlagError
	return errors.As(err, &fe)
}

// seed stores n finished jobs of daily-maintenance and one running job.
func seed(e *tenv, n int) {
	e.srv.Fake.SeedDefaults()
	for i := 0; i < n; i++ {
		e.srv.Fake.SeedJob(domain.Job{
			ID: fmt.Sprintf("daily-maintenance-2025-01-%02dT02:00:00Z", i+1), ScheduleID: "daily-maintenance",
			ScheduleName: "Daily Maintenance", Target: "orders", State: domain.StateSucceeded, TriggeredBy: "schedule",
			ProgressPct: 100, StartedAtMs: int64(1_735_696_800_000 + i*86_400_000), FinishedAtMs: int64(1_735_696_800_000 + i*86_400_000 + 83_000),
			DurationMs: 83_000, ResultSummary: "3 tasks succeeded",
			Tasks: []domain.TaskRun{{TaskType: domain.TaskQuotaCheck, State: domain.StateSucceeded, Attempt: 1, ProgressPct: 100, ResultSummary: "12% of quota"}},
		})
	}
	e.srv.Fake.SeedJob(domain.Job{
		ID: "weekly-maintenance-manual-9", ScheduleID: "weekly-maintenance", ScheduleName: "Weekly Maintenance",
		Target: "orders", State: domain.StateRunning, Forced: true, TriggeredBy: "alice", ProgressPct: 25,
		StartedAtMs: 1_800_000_000_000,
		Tasks: []domain.TaskRun{
			{TaskType: domain.TaskConsistencyCheck, State: domain.StateRunning, Attempt: 2, ProgressPct: 50},
			{TaskType: domain.TaskMVCCCleanup, State: domain.StatePending},
		},
	})
}

// ---- list ----

func TestListArgs(t *testing.T) {
	var got *ListOptions
	capture := func(_ context.Context, o *ListOptions) error { got = o; return nil }
	err := execute(NewCmdList(argvFactory(), capture), "--active", "--schedule", "Daily Maintenance", "--state", "running", "-L", "5", "--page-token", "7", "-o", "json")
	if err != nil || !got.Active || got.Schedule != "Daily Maintenance" || got.State != "running" || got.Limit != 5 || got.PageToken != "7" || got.Output != "json" {
		t.Fatalf("%v %+v", err, got)
	}
	if err := execute(NewCmdList(argvFactory(), capture)); err != nil || got.Limit != api.DefaultJobLimit || got.Active {
		t.Fatalf("defaults %v %+v", err, got)
	}
	for _, bad := range [][]string{{"--state", "done"}, {"--limit", "0"}, {"--limit", "1001"}, {"--active", "--state", "failed"}, {"-o", "csv"}, {"x"}} {
		if err := execute(NewCmdList(argvFactory(), capture), bad...); !isFlagError(err) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestListRun(t *testing.T) {
	t.Run("tty", func(t *testing.T) {
		e := newTEnv(t, true)
		seed(e, 3)
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Limit: 2, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "weekly-maintenance-manual-9") ||
			!strings.Contains(lines[1], "● running") || !strings.Contains(lines[1], "alice (forced)") || !strings.Contains(lines[2], "1m23s") {
			t.Fatalf("table:\n%s", out)
		}
		if !strings.Contains(e.errOut.String(), "--limit 2 --page-token ") {
			t.Fatalf("no next page hint: %q", e.errOut)
		}
	})
	t.Run("piped by schedule name", func(t *testing.T) {
		e := newTEnv(t, false)
		seed(e, 3)
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Schedule: "Daily Maintenance", State: "succeeded", Limit: 50, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		if f := e.srv.Fake.LastFilter(); f.ScheduleID != "daily-maintenance" || f.State != domain.StateSucceeded {
			t.Fatalf("filter %+v", f)
		}
		lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("rows:\n%s", e.out)
		}
		f := strings.Split(lines[0], "\t")
		if f[0] != "daily-maintenance-2025-01-03T02:00:00Z" || f[2] != "succeeded" || f[4] != "2025-01-03T02:00:00Z" {
			t.Fatalf("fields %q", f)
		}
		if e.errOut.Len() != 0 {
			t.Fatalf("stderr %q", e.errOut)
		}
	})
	t.Run("json", func(t *testing.T) {
		e := newTEnv(t, false)
		seed(e, 2)
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Active: true, Limit: 50, Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var p api.JobPage
		if err := json.Unmarshal(e.out.Bytes(), &p); err != nil || p.Count != 1 || p.Jobs[0].ID != "weekly-maintenance-manual-9" {
			t.Fatalf("%v %s", err, e.out)
		}
	})
	t.Run("unknown schedule", func(t *testing.T) {
		e := newTEnv(t, false)
		if err := listRun(ctx, &ListOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, Schedule: "Nope", Limit: 50, Output: "table"}); err == nil {
			t.Fatal("listed jobs of an unknown schedule")
		}
	})
}

// ---- get ----

func TestGetArgs(t *testing.T) {
	var got *GetOptions
	f := argvFactory()
	capture := func(_ context.Context, o *GetOptions) error { got = o; return nil }
	if err := execute(NewCmdGet(f, capture), "daily-maintenance-2025-01-01T02:00:00Z", "--watch"); err != nil || !got.Watch || got.ID != "daily-maintenance-2025-01-01T02:00:00Z" || got.Interval != 5*time.Millisecond {
		t.Fatalf("%v %+v", err, got)
	}
	for _, bad := range [][]string{{}, {"../etc/passwd"}, {"a", "b"}, {"x", "-o", "xml"}} {
		if err := execute(NewCmdGet(f, capture), bad...); !isFlagError(err) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestGetRun(t *testing.T) {
	t.Run("tty", func(t *testing.T) {
		e := newTEnv(t, true)
		seed(e, 1)
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "weekly-maintenance-manual-9", Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		for _, want := range []string{"Job weekly-maintenance-manual-9", "Weekly Maintenance (weekly-maintenance)", "● running", "[#####...............] 25%", "alice (forced)", "consistency_check", "mvcc_cleanup"} {
			if !strings.Contains(out, want) {
				t.Errorf("lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("piped", func(t *testing.T) {
		e := newTEnv(t, false)
		seed(e, 1)
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "daily-maintenance-2025-01-01T02:00:00Z", Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		if !strings.Contains(out, "state\tsucceeded\n") || !strings.Contains(out, "task\tquota_check\tsucceeded\t100%\t1\t0\t12% of quota\n") {
			t.Fatalf("out:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		e := newTEnv(t, false)
		seed(e, 1)
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "weekly-maintenance-manual-9", Output: "json"}); err != nil {
			t.Fatal(err)
		}
		var j domain.Job
		if err := json.Unmarshal(e.out.Bytes(), &j); err != nil || j.TriggeredBy != "alice" {
			t.Fatalf("%v %s", err, e.out)
		}
	})
	t.Run("not found", func(t *testing.T) {
		e := newTEnv(t, false)
		err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "ghost", Output: "table"})
		if !client.IsNotFound(err) || cmdutil.ExitCode(err) != cmdutil.ExitFailure {
			t.Fatalf("err %v", err)
		}
	})
}

func startJob(t *testing.T, e *tenv) string {
	t.Helper()
	e.srv.Fake.SeedDefaults()
	j, err := e.srv.Fake.RunSchedule(ctx, "daily-maintenance", false, "bob")
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Fake.SetAutoProgress(true)
	return j.ID
}

func TestWatch(t *testing.T) {
	t.Run("tty redraws", func(t *testing.T) {
		e := newTEnv(t, true)
		id := startJob(t, e)
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: id, Watch: true, Interval: time.Millisecond, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		out := e.out.String()
		if strings.Count(out, "Job "+id) < 3 || !strings.Contains(out, "\x1b[12A\x1b[J") || !strings.HasSuffix(strings.TrimRight(out, " \n"), "ok") {
			t.Fatalf("out:\n%q", out)
		}
	})
	t.Run("piped lines", func(t *testing.T) {
		e := newTEnv(t, false)
		id := startJob(t, e)
		if err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: id, Watch: true, Interval: time.Millisecond, Output: "table"}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
		if len(lines) < 4 || lines[0] != id+"\trunning\t0%\tmetrics_collection 0%" || lines[1] != id+"\trunning\t16.7%\tmetrics_collection 50%" || lines[len(lines)-1] != id+"\tsucceeded\t100%" {
			t.Fatalf("lines %q", lines)
		}
		for i := 1; i < len(lines); i++ {
			if lines[i] == lines[i-1] {
				t.Fatalf("repeated line %q", lines[i])
			}
		}
	})
	t.Run("failed job exits 1", func(t *testing.T) {
		e := newTEnv(t, false)
		id := startJob(t, e)
		e.srv.Fake.SetFailingTask(domain.TaskQuotaCheck)
		err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: id, Watch: true, Interval: time.Millisecond, Output: "json"})
		if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "quota_check failed") {
			t.Fatalf("err %v", err)
		}
		var j domain.Job
		if err := json.Unmarshal(e.out.Bytes(), &j); err != nil || j.State != domain.StateFailed {
			t.Fatalf("json %v %s", err, e.out)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedDefaults()
		j, _ := e.srv.Fake.RunSchedule(ctx, "daily-maintenance", false, "bob") // never advances
		c, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		err := getRun(c, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: j.ID, Watch: true, Interval: time.Millisecond, Output: "table"})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(e.errOut.String(), "job get "+j.ID+" --watch") {
			t.Fatalf("err %v stderr %q", err, e.errOut)
		}
	})
	t.Run("gives up after repeated failures", func(t *testing.T) {
		e := newTEnv(t, false)
		id := startJob(t, e)
		e.srv.Fake.FailWith(apitest.MethodGetJob, domain.ErrUnavailable)
		err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: id, Watch: true, Interval: time.Millisecond, Output: "table"})
		if cmdutil.ExitCode(err) != cmdutil.ExitUnavailable {
			t.Fatalf("err %v (exit %d)", err, cmdutil.ExitCode(err))
		}
	})
	t.Run("skipped is success", func(t *testing.T) {
		e := newTEnv(t, false)
		e.srv.Fake.SeedJob(domain.Job{ID: "daily-maintenance-manual-3", ScheduleID: "daily-maintenance", State: domain.StateSkipped})
		err := getRun(ctx, &GetOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "daily-maintenance-manual-3", Watch: true, Interval: time.Millisecond, Output: "table"})
		if err != nil || !strings.Contains(e.errOut.String(), "outside the maintenance window") {
			t.Fatalf("err %v stderr %q", err, e.errOut)
		}
	})
}

// ---- cancel ----

func TestCancelArgs(t *testing.T) {
	var got *CancelOptions
	capture := func(_ context.Context, o *CancelOptions) error { got = o; return nil }
	if err := execute(NewCmdCancel(argvFactory(), capture), "weekly-maintenance-manual-9"); err != nil || got.ID != "weekly-maintenance-manual-9" || got.Wait {
		t.Fatalf("%v %+v", err, got)
	}
	if err := execute(NewCmdCancel(argvFactory(), capture), "--wait", "weekly-maintenance-manual-9"); err != nil || !got.Wait || got.Interval <= 0 {
		t.Fatalf("--wait: %v %+v", err, got)
	}
	for _, bad := range [][]string{{}, {"a/b"}, {"a", "b"}} {
		if err := execute(NewCmdCancel(argvFactory(), capture), bad...); !isFlagError(err) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

func TestCancelRun(t *testing.T) {
	for _, tty := range []bool{true, false} {
		e := newTEnv(t, tty)
		seed(e, 1)
		o := &CancelOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "weekly-maintenance-manual-9", Output: "table"}
		if err := cancelRun(ctx, o); err != nil {
			t.Fatal(err)
		}
		// The service answers the job as it was when the cancellation
		// was requested: the output says so, and not that it runs now.
		want := "weekly-maintenance-manual-9\tcancel_requested\trunning\n"
		if tty {
			want = "✓ Cancellation requested for job weekly-maintenance-manual-9 (it was running; it stops at its next heartbeat)\n" +
				"  Follow it with: themisctl job get weekly-maintenance-manual-9 --watch\n"
		}
		if e.out.String() != want {
			t.Fatalf("tty=%v out %q", tty, e.out)
		}
		err := cancelRun(ctx, o)
		if !client.IsConflict(err) || !strings.Contains(cmdutil.Message(err), "already cancelled") {
			t.Fatalf("second cancel: %v", err)
		}
	}
}

func TestCancelWait(t *testing.T) {
	for _, c := range []struct {
		tty            bool
		output, out    string
		errOutContains string
	}{
		{true, "table", "✓ Job weekly-maintenance-manual-9 cancelled\n", "waiting for it to stop"},
		{false, "table", "weekly-maintenance-manual-9\tcancelled\n", ""},
		{false, "json", "", ""},
	} {
		e := newTEnv(t, c.tty)
		seed(e, 1)
		o := &CancelOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: "weekly-maintenance-manual-9", Wait: true,
			Interval: time.Millisecond, Output: c.output}
		if err := cancelRun(ctx, o); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if c.output == "json" {
			var j domain.Job
			if err := json.Unmarshal(e.out.Bytes(), &j); err != nil || j.State != domain.StateCancelled {
				t.Errorf("json: %v %s", err, e.out)
			}
		} else if e.out.String() != c.out {
			t.Errorf("%+v: out %q", c, e.out)
		}
		if !strings.Contains(e.errOut.String(), c.errOutContains) {
			t.Errorf("%+v: stderr %q", c, e.errOut)
		}
	}
}

// A job that ends otherwise before the cancellation reaches it: --wait
// says so with exit status 1.
func TestCancelWaitJobEndedFirst(t *testing.T) {
	e := newTEnv(t, false)
	id := startJob(t, e) // advances one step on each read, to succeeded
	// The cancel request is accepted but never reaches the job.
	inner := e.srv.Config.Handler
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/cancel") {
			r = r.Clone(r.Context())
			r.Method, r.URL.Path, r.Body, r.ContentLength = http.MethodGet, strings.TrimSuffix(r.URL.Path, "/cancel"), http.NoBody, 0
			r.Header.Del("Content-Type")
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	e.f.APIURL, e.f.HTTPClient = proxy.URL, proxy.Client()
	err := cancelRun(ctx, &CancelOptions{IO: e.f.IOStreams, APIClient: e.f.APIClient, ID: id, Wait: true, Interval: time.Millisecond, Output: "table"})
	if cmdutil.ExitCode(err) != cmdutil.ExitFailure || !strings.Contains(err.Error(), "ended succeeded before the cancellation reached it") {
		t.Fatalf("err %v", err)
	}
	if e.out.String() != id+"\tsucceeded\n" {
		t.Errorf("out %q", e.out)
	}
}

func TestNewCmdJob(t *testing.T) {
	cmd := NewCmdJob(argvFactory())
	var names []string
	for _, c := range cmd.Commands() {
		names = append(names, c.Name())
	}
	if strings.Join(names, ",") != "cancel,get,list" {
		t.Fatalf("subcommands %v", names)
	}
}

// screen replays what a terminal of the given width shows for out: lines
// wrap at the width, "\x1b[nA" moves the cursor up, "\x1b[J" clears to the
// end of the screen.
func screen(t *testing.T, out string, width int) []string {
	t.Helper()
	rows := [][]rune{{}}
	row, col := 0, 0
	put := func(r rune) {
		if col == width { // deferred wrap: the next character starts a new row
			row, col = row+1, 0
		}
		for len(rows) <= row {
			rows = append(rows, []rune{})
		}
		for len(rows[row]) < col {
			rows[row] = append(rows[row], ' ')
		}
		if col < len(rows[row]) {
			rows[row][col] = r
		} else {
			rows[row] = append(rows[row], r)
		}
		col++
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '\n':
			row, col = row+1, 0
			for len(rows) <= row {
				rows = append(rows, []rune{})
			}
		case r == '\x1b':
			j := i + 2 // past "\x1b["
			n := 0
			for ; rs[j] >= '0' && rs[j] <= '9'; j++ {
				n = n*10 + int(rs[j]-'0')
			}
			switch rs[j] {
			case 'A':
				row = max(row-n, 0)
			case 'J':
				if col < len(rows[row]) {
					rows[row] = rows[row][:col]
				}
				rows = rows[:row+1]
			default:
				t.Fatalf("escape %q", string(rs[i:j+1]))
			}
			i = j
		default:
			put(r)
		}
	}
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = strings.TrimRight(string(r), " ")
	}
	return slices.DeleteFunc(lines, func(l string) bool { return l == "" })
}

func TestWatchFitsTerminalWidth(t *testing.T) {
	const width = 40
	watch := func(termWidth func() int) (string, domain.Job) {
		e := newTEnv(t, true)
		e.f.IOStreams.TerminalWidth = termWidth
		id := startJob(t, e)
		j, err := Watch(ctx, WatchOptions{IO: e.f.IOStreams, Client: mustClient(t, e), JobID: id, Interval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return e.out.String(), j
	}
	out, final := watch(func() int { return width })
	if strings.Count(out, "\x1b[J") < 3 {
		t.Fatalf("too few redraws:\n%q", out)
	}
	var view strings.Builder
	writeJob(&view, final, true)
	want := strings.Split(strings.TrimRight(cmdutil.FitWidth(view.String(), width), "\n"), "\n")
	want = slices.DeleteFunc(want, func(l string) bool { return strings.TrimSpace(l) == "" })
	for i := range want {
		want[i] = strings.TrimRight(want[i], " ")
	}
	got := screen(t, out, width)
	if !slices.Equal(got, want) {
		t.Fatalf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range got {
		if n := utf8.RuneCountInString(l); n >= width {
			t.Errorf("%d columns: %q", n, l)
		}
	}
	if !strings.Contains(strings.Join(got, "\n"), "…") {
		t.Error("nothing was cut: the view fits in the test width, the test proves nothing")
	}

	// The same watch without knowing the width wraps long lines and leaves
	// stale rows on that screen (what the trimming prevents).
	out, _ = watch(nil)
	if got := screen(t, out, width); len(got) <= len(want) {
		t.Fatalf("untrimmed redraw left no stale rows:\n%s", strings.Join(got, "\n"))
	}
}

func mustClient(t *testing.T, e *tenv) *client.Client {
	t.Helper()
	c, err := e.f.APIClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Watch asks the server to hold each request until the job ends (GET
// /jobs/{id}?wait=): 20 s when it draws nothing, the interval when it
// draws progress. The fake answers at once, so the job advances per request.
func TestWatchLongPolls(t *testing.T) {
	for _, c := range []struct {
		output, wait string
	}{{"json", "20s"}, {"table", "1ms"}} {
		t.Run(c.output, func(t *testing.T) {
			e := newTEnv(t, false)
			id := startJob(t, e)
			var waits []string
			rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				waits = append(waits, r.URL.Query().Get("wait"))
				e.srv.Handler.ServeHTTP(w, r)
			}))
			t.Cleanup(rec.Close)
			c2, err := client.New(rec.URL, "", rec.Client())
			if err != nil {
				t.Fatal(err)
			}
			j, err := Watch(ctx, WatchOptions{IO: e.f.IOStreams, Client: c2, JobID: id, Interval: time.Millisecond, Quiet: c.output == "json"})
			if err != nil || j.State != domain.StateSucceeded {
				t.Fatalf("watch: %v %+v", err, j)
			}
			if len(waits) < 2 {
				t.Fatalf("%d requests", len(waits))
			}
			for _, w := range waits {
				if w != c.wait {
					t.Fatalf("requests with wait %q, want %q", waits, c.wait)
				}
			}
		})
	}
}
