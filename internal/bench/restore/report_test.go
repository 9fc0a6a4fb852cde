package restore

import (
	"bytes"
	"strings"
	"testing"
)

func TestScale(t *testing.T) {
	for size, want := range map[int64]int64{1: 1, 100 << 20: 7, 1 << 30: 69} {
		if got := (Config{SizeBytes: size}).scale(); got != want {
			t.Errorf("scale of %d bytes = %d, want %d", size, got, want)
		}
	}
}

func TestWriteText(t *testing.T) {
	rto, rpo := 12.5, 1.5
	rep := &Report{DatabaseBytes: 1 << 30, Scale: 69, Server: "15", CPUs: 2, BackupBytes: 1 << 30,
		Floor: Row{Name: "floor: cp -a", RestoreSec: 2, CopySec: 2, RestoredBytes: 1 << 30, RateMiBs: 512, FloorRatio: 1, CopyFloorRatio: 1},
		Rows: []Row{{Name: "backup_restore", RestoreSec: 6, CopySec: 2.5, ReplaySec: 3, RestoredBytes: 1 << 30, WALBytes: 300 << 20,
			RateMiBs: 170.7, FloorRatio: 3, CopyFloorRatio: 1.25, RTOSec: &rto, RPOMs: &rpo, WALRange: "A-B", Check: "5 of 5 canary rows"}}}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"1.00 GiB database", "floor: cp -a", "backup_restore", "3.00", "300.00 MiB", "12.5", "WAL A-B"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
