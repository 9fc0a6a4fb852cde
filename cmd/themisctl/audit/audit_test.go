package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/api/apitest"
	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	auditlog "github.com/themis-maintenance/themis/internal/audit"
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
	before := time.Now()
	if err := execute(NewCmdAudit(f, capture), "--since", "1h", "-L", "10", "-o", "json"); err != nil || got.Limit != 10 || got.Output != "json" {
		t.Fatalf("%v %+v", err, got)
	}
	if got.Since.Before(before.Add(-time.Hour-time.Second)) || got.Since.After(time.Now().Add(-time.Hour)) {
		t.Fatalf("since %v", got.Since)
	}
	if err := execute(NewCmdAudit(f, capture), "--since", "2025-01-01T00:00:00Z"); err != nil || !got.Since.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || got.Limit != api.DefaultAuditLimit {
		t.Fatalf("%v %+v", err, got)
	}
	if err := execute(NewCmdAudit(f, capture)); err != nil || !got.Since.IsZero() {
		t.Fatalf("%v %+v", err, got)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--limit", "0"}, {"--limit", "10001"}, {"x"}, {"-o", "csv"}} {
		if err := execute(NewCmdAudit(f, capture), bad...); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

type tenv struct {
	opts        *Options
	srv         *apitest.Server
	out, errOut *bytes.Buffer
}

func newTEnv(t *testing.T, tty bool) *tenv {
	t.Helper()
	srv := apitest.NewServer(t, nil, api.Options{})
	srv.Fake.SeedDefaults()
	ios, _, out, errOut := cmdutil.TestStreams(tty)
	f := cmdutil.NewFactory(ios, "test")
	f.APIURL, f.HTTPClient = srv.URL, srv.Client()
	f.Getenv = func(string) string { return "" }
	t0 := time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC)
	log := srv.Fake.AuditLog()
	for i, e := range []auditlog.Event{
		{Principal: "ops", Action: "schedule.disable", Resource: "schedule/daily-maintenance", Outcome: "success", Status: 200, Detail: "fields: enabled"},
		{Principal: "", Action: "schedule.list", Resource: "schedules", Outcome: "denied", Status: 401, Detail: "unauthorized: missing bearer token"},
		{Principal: "ci", Action: "schedule.run", Resource: "schedule/weekly-maintenance", Outcome: "denied", Status: 403, Detail: "force=true; forbidden"},
	} {
		e.Time, e.RequestID = t0.Add(time.Duration(i)*time.Minute), "req-"+string(rune('a'+i))
		if err := log.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return &tenv{opts: &Options{IO: ios, APIClient: f.APIClient, Limit: 100, Output: "table"}, srv: srv, out: out, errOut: errOut}
}

func TestRun(t *testing.T) {
	t.Run("tty", func(t *testing.T) {
		e := newTEnv(t, true)
		if err := auditRun(ctx, e.opts); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "2025-01-01 02:00:00 UTC") ||
			!strings.Contains(lines[2], "⊘ denied") || !strings.Contains(lines[2], " - ") || !strings.Contains(lines[3], "schedule.run") {
			t.Fatalf("table:\n%s", e.out)
		}
	})
	t.Run("piped since and limit", func(t *testing.T) {
		e := newTEnv(t, false)
		e.opts.Since, e.opts.Limit = time.Date(2025, 1, 1, 2, 1, 0, 0, time.UTC), 1
		if err := auditRun(ctx, e.opts); err != nil {
			t.Fatal(err)
		}
		// The newest event at or after 02:01 when the log is read: the 403
		// (this call's own audit.read is written after the answer).
		f := strings.Split(strings.TrimSpace(e.out.String()), "\t")
		if len(f) != 8 || f[0] != "2025-01-01T02:02:00Z" || f[1] != "ci" || f[4] != "denied" || f[5] != "403" || f[7] != "req-c" {
			t.Fatalf("fields %q", f)
		}
	})
	t.Run("tty truncated", func(t *testing.T) {
		e := newTEnv(t, true)
		e.opts.Limit = 2
		if err := auditRun(ctx, e.opts); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.errOut.String(), "Older events were left out") {
			t.Fatalf("stderr %q", e.errOut)
		}
	})
	t.Run("json", func(t *testing.T) {
		e := newTEnv(t, false)
		e.opts.Output = "json"
		if err := auditRun(ctx, e.opts); err != nil {
			t.Fatal(err)
		}
		var l api.AuditList
		if err := json.Unmarshal(e.out.Bytes(), &l); err != nil || l.Count != 3 || l.Events[0].Action != "schedule.disable" {
			t.Fatalf("%v %s", err, e.out)
		}
	})
	t.Run("read error is exit 1", func(t *testing.T) {
		srv := apitest.NewServer(t, nil, api.Options{Audit: brokenLog{}})
		ios, _, _, _ := cmdutil.TestStreams(false)
		c, _ := client.New(srv.URL, "", srv.Client())
		err := auditRun(ctx, &Options{IO: ios, APIClient: func() (*client.Client, error) { return c, nil }, Limit: 5, Output: "table"})
		if cmdutil.ExitCode(err) != cmdutil.ExitFailure {
			t.Fatalf("err %v", err)
		}
	})
}

// brokenLog cannot be read.
type brokenLog struct{}

func (brokenLog) Record(context.Context, auditlog.Event) error { return nil }
func (brokenLog) Read(context.Context, time.Time, int) (auditlog.Page, error) {
	return auditlog.Page{}, io.ErrUnexpectedEOF
}
