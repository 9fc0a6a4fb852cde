package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/driver/commandlog"
)

func TestCommands(t *testing.T) {
	forEachBackend(t, func(t *testing.T, _ backend, s *Store) {
		ctx := context.Background()
		base := time.Now().Add(-time.Hour).UnixMilli()
		var cmds []commandlog.Command
		for i := range 5 {
			cmds = append(cmds, commandlog.Command{
				JobID: "job-a", Target: "db1", Task: "mvcc_cleanup", Attempt: 1, Object: fmt.Sprintf("public.t%d", i%2),
				Operation: "VACUUM", Statement: fmt.Sprintf(`VACUUM "public"."t%d"`, i%2),
				StartMs: base + int64(i)*1000, EndMs: base + int64(i)*1000 + 250, DurationMs: 250, RowsAffected: int64(i),
				ThrottledMs: int64(i * 10),
			})
		}
		cmds = append(cmds, commandlog.Command{JobID: "job-b", Target: "db2", Task: "integrity_check", Statement: "SELECT 1\xff",
			StartMs: base + 10_000, EndMs: base + 10_001, Error: "boom"})
		if err := s.RecordCommands(ctx, cmds); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListCommands(ctx, CommandFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 6 || all[0].JobID != "job-b" || all[0].Error != "boom" || all[0].Statement != "SELECT 1?" {
			t.Fatalf("all commands, newest first: %+v", all)
		}
		got, err := s.ListCommands(ctx, CommandFilter{Target: "db1", Object: "public.t1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].RowsAffected != 3 || got[1].RowsAffected != 1 || got[0].ThrottledMs != 30 || got[0].DurationMs != 250 {
			t.Fatalf("db1 public.t1: %+v", got)
		}
		got, _ = s.ListCommands(ctx, CommandFilter{JobID: "job-a", SinceMs: base + 3000})
		if len(got) != 2 {
			t.Fatalf("job-a since +3s: %d rows, want 2", len(got))
		}
		page1, _ := s.ListCommands(ctx, CommandFilter{Limit: 4})
		page2, _ := s.ListCommands(ctx, CommandFilter{Limit: 4, BeforeID: page1[3].ID})
		if len(page1) != 4 || len(page2) != 2 || page2[0].ID >= page1[3].ID {
			t.Fatalf("pages %d + %d", len(page1), len(page2))
		}
		r, err := s.Prune(ctx, time.Time{}, time.UnixMilli(base+4500))
		if err != nil {
			t.Fatal(err)
		}
		if r.Commands != 5 {
			t.Fatalf("pruned %d commands, want 5", r.Commands)
		}
	})
}
