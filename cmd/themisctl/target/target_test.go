package target

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/internal/config"
	"github.com/themis-maintenance/themis/internal/history"
	"github.com/themis-maintenance/themis/starter"
)

var ctx = context.Background()

func execute(cmd *cobra.Command, args ...string) error {
	return cmdutil.ExecuteForTest(ctx, cmd, args...)
}

func TestThrottleArgs(t *testing.T) {
	var got *ThrottleOptions
	capture := func(_ context.Context, o *ThrottleOptions) error { got = o; return nil }
	ios, _, _, _ := cmdutil.TestStreams(true)
	f := cmdutil.NewFactory(ios, "test")
	if err := execute(NewCmdThrottle(f, capture), "orders", "--for", "30m", "--reason", "freeze"); err != nil {
		t.Fatal(err)
	}
	if got.Target != "orders" || got.For != 30*time.Minute || got.Reason != "freeze" || got.Clear {
		t.Fatalf("%+v", got)
	}
	if err := execute(NewCmdThrottle(f, capture), "orders", "--until", "2030-01-01T00:00:00Z"); err != nil || got.Until.Year() != 2030 {
		t.Fatalf("--until: %v %+v", err, got)
	}
	for _, bad := range [][]string{
		{}, {"a", "b"}, {"orders", "--for", "soon"}, {"orders", "--for", "0s"}, {"orders", "--for", "-1m"},
		{"orders", "--until", "tomorrow"}, {"orders", "--for", "1h", "--until", "2030-01-01T00:00:00Z"},
		{"orders", "--clear", "--for", "1h"}, {"orders", "--reason", "x"}, {"orders", "-o", "csv"},
	} {
		if err := execute(NewCmdThrottle(f, capture), bad...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

// Set, show and clear against the real gateway and starter over a SQLite
// history store.
func TestThrottleRun(t *testing.T) {
	store, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := config.Config{Targets: []config.TargetConfig{{Name: "orders", Driver: "postgres"}}}
	svc := starter.New(nil, starter.Options{Records: store, Targets: cfg.TargetInfos()})
	srv := httptest.NewServer(api.New(svc, api.Options{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	run := func(output string, set func(*ThrottleOptions)) string {
		ios, _, out, _ := cmdutil.TestStreams(false)
		f := cmdutil.NewFactory(ios, "test")
		f.APIURL, f.HTTPClient = srv.URL, srv.Client()
		f.Getenv = func(string) string { return "" }
		o := &ThrottleOptions{IO: ios, APIClient: f.APIClient, Target: "orders", Output: output}
		if set != nil {
			set(o)
		}
		if err := throttleRun(ctx, o); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if out := run("table", nil); !strings.Contains(out, "not paused") {
		t.Fatalf("show: %q", out)
	}
	out := run("table", func(o *ThrottleOptions) { o.For, o.Reason = time.Hour, "release freeze" })
	if !strings.Contains(out, "paused until") || !strings.Contains(out, "release freeze") {
		t.Fatalf("set: %q", out)
	}
	var st api.ThrottleState
	if err := json.Unmarshal([]byte(run("json", nil)), &st); err != nil || !st.Paused || st.Reason != "release freeze" {
		t.Fatalf("json: %v %+v", err, st)
	}
	if _, _, ok, _ := store.ManualPause(ctx, "orders", time.Now()); !ok {
		t.Fatal("the pause is not in the history store")
	}
	if out := run("table", func(o *ThrottleOptions) { o.Clear = true }); !strings.Contains(out, "cleared") {
		t.Fatalf("clear: %q", out)
	}
	if _, _, ok, _ := store.ManualPause(ctx, "orders", time.Now()); ok {
		t.Fatal("the pause is still stored")
	}
}
