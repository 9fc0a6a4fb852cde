package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateDrillStrategy(t *testing.T) {
	for _, s := range []string{"", DrillStrategyBackupRestore, DrillStrategyReplicaClone} {
		if err := ValidateDrillStrategy(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"pitr", "Backup_Restore", " backup_restore", strings.Repeat("x", 500)} {
		err := ValidateDrillStrategy(s)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "strategy" || len(ve.Message) > 200 {
			t.Errorf("%.20q: %v", s, err)
		}
	}
}

func TestRestoreRatesAndTrend(t *testing.T) {
	if got := MBPerSecond(50_000_000, 2000); got != 25 {
		t.Errorf("50 MB in 2 s = %v MB/s", got)
	}
	if MBPerSecond(0, 10) != 0 || MBPerSecond(10, 0) != 0 {
		t.Error("no bytes or no time is 0 MB/s")
	}
	p := TrendPoint(Drill{Strategy: DrillStrategyBackupRestore, RestoreMBps: 25, ReplayMBps: 12, FailureAtMs: 100_000, BackupAtMs: 40_000})
	if p.Strategy != DrillStrategyBackupRestore || p.RestoreMBps != 25 || p.ReplayMBps != 12 || p.BackupAgeMs != 60_000 {
		t.Errorf("trend point %+v", p)
	}
	if p := TrendPoint(Drill{FailureAtMs: 100_000}); p.BackupAgeMs != 0 {
		t.Errorf("no backup: age %d", p.BackupAgeMs)
	}
}
