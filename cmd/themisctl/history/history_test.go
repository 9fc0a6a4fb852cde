package history

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/driver/commandlog"
	"github.com/themis-maintenance/themis/internal/config"
	historystore "github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/starter"
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
	if err := execute(NewCmdHistory(f, capture), "--target", "orders", "--object", "public.t", "--job", "j1", "--since", "1h", "-L", "7"); err != nil {
		t.Fatal(err)
	}
	q := got.Query
	if q.Target != "orders" || q.Object != "public.t" || q.JobID != "j1" || q.Limit != 7 || time.Since(q.Since) < time.Hour-time.Second {
		t.Fatalf("%+v", q)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--limit", "0"}, {"--limit", "1001"}, {"x"}, {"-o", "csv"}} {
		if err := execute(NewCmdHistory(f, capture), bad...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

// The command runs against the real gateway and starter over a SQLite
// history store.
func TestRun(t *testing.T) {
	store, err := historystore.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC).UnixMilli()
	if err := store.RecordCommands(ctx, []commandlog.Command{
		{JobID: "job-1", Target: "orders", Task: "mvcc_cleanup", Object: "public.events", Operation: "VACUUM",
			Statement: `VACUUM (ANALYZE) "public"."events"`, StartMs: t0, EndMs: t0 + 1500, DurationMs: 1500, ThrottledMs: 250},
		{JobID: "job-1", Target: "orders", Task: "mvcc_cleanup", Operation: "SELECT", Statement: "SELECT 1",
			StartMs: t0 + 2000, EndMs: t0 + 2001, DurationMs: 1, Error: "canceling statement due to lock timeout"},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Targets: []config.TargetConfig{{Name: "orders", Driver: "postgres"}}}
	srv := apitest.NewServer(t, nil, api.Options{Commands: starter.New(nil, starter.Options{Records: store, Targets: cfg.TargetInfos()})})
	run := func(tty bool, output string, q func(*Options)) (string, string) {
		ios, _, out, errOut := cmdutil.TestStreams(tty)
		f := cmdutil.NewFactory(ios, "test")
		f.APIURL, f.HTTPClient = srv.URL, srv.Client()
		f.Getenv = func(string) string { return "" }
		o := &Options{IO: ios, APIClient: f.APIClient, Output: output}
		o.Query.Limit = 100
		if q != nil {
			q(o)
		}
		if err := historyRun(ctx, o); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	out, _ := run(true, "table", nil)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "STARTED") || !strings.Contains(lines[1], "lock timeout") ||
		!strings.Contains(lines[2], "public.events") || !strings.Contains(lines[2], "1.5s") || !strings.Contains(lines[2], "250ms") {
		t.Fatalf("table:\n%s", out)
	}
	out, _ = run(false, "json", func(o *Options) { o.Query.Object = "public.events" })
	var page api.CommandPage
	if err := json.Unmarshal([]byte(out), &page); err != nil || page.Count != 1 || page.Commands[0].DurationMs != 1500 {
		t.Fatalf("%v %s", err, out)
	}
	_, errOut := run(true, "table", func(o *Options) { o.Query.Limit = 1 })
	if !strings.Contains(errOut, "--page-token c") {
		t.Fatalf("stderr %q", errOut)
	}
	_, errOut = run(true, "table", func(o *Options) { o.Query.JobID = "job-2" })
	if !strings.Contains(errOut, "No statements match") {
		t.Fatalf("stderr %q", errOut)
	}
}
