package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// drillPlan is the strategy a drill restores by, why, and (backup_restore)
// the base backup it restores.
type drillPlan struct {
	Strategy string
	// Why says where the strategy came from: the request, the target's
	// drill_strategy, or the driver's default and its reason.
	Why    string
	Backup baseBackup
	// Notes say which backups were passed over and why.
	Notes []string
}

// baseBackup is a verified pg_basebackup backup a drill can restore.
type baseBackup struct {
	ID       string // the backup's directory name
	Dir      string // the backup's directory
	Data     string // its data directory
	TakenAt  time.Time
	Bytes    int64
	Recorded string // "history store" or "backup_dir marker"
	Meta     backupMeta
}

func (b baseBackup) String() string {
	return fmt.Sprintf("%s (taken %s, %s, from the %s)", b.ID, b.TakenAt.UTC().Format(time.RFC3339), bytesHuman(b.Bytes), b.Recorded)
}

// planDrill resolves the drill's strategy: requested, else the target's
// DrillStrategy, else the default: backup_restore when a verified base
// backup taken before the failure instant (zero: any) exists, else
// replica_clone. backup_restore without such a backup is Misconfigured; an
// unknown strategy is InvalidInput.
func planDrill(ctx context.Context, t driver.Target, h driver.History, requested string, failureAt time.Time) (drillPlan, error) {
	plan := drillPlan{Strategy: requested, Why: "requested"}
	if plan.Strategy == "" {
		plan.Strategy, plan.Why = t.DrillStrategy, "the target's drill_strategy"
	}
	switch plan.Strategy {
	case "", driver.StrategyBackupRestore, driver.StrategyReplicaClone:
	default:
		return plan, driver.Permanentf(driver.KindInvalidInput, "drill strategy %q is unknown (want %s or %s)",
			plan.Strategy, driver.StrategyBackupRestore, driver.StrategyReplicaClone)
	}
	if plan.Strategy == driver.StrategyReplicaClone {
		return plan, nil
	}
	bb, found, notes := findBaseBackup(ctx, t, h, failureAt)
	plan.Notes = notes
	if plan.Strategy == "" {
		if found {
			plan.Strategy, plan.Why = driver.StrategyBackupRestore, "the driver's default: a verified base backup exists"
		} else {
			plan.Strategy, plan.Why = driver.StrategyReplicaClone, "the driver's default: no verified base backup to restore"
		}
	}
	if plan.Strategy == driver.StrategyBackupRestore {
		if !found {
			return plan, driver.Permanentf(driver.KindMisconfigured,
				"target %s: strategy backup_restore, but no verified pg_basebackup backup taken before the failure instant is on record (run backup_verification with method pg_basebackup, or use strategy replica_clone)",
				t.Name)
		}
		plan.Backup = bb
	}
	return plan, nil
}

// findBaseBackup returns the newest verified base backup of t taken at or
// before before (zero: any): the history store's newest verified backup
// when it is one (a pg_dump cannot be replayed with WAL), else the newest
// one whose marker in backup_dir says verified. Its data directory must
// still hold a backup_label.
func findBaseBackup(ctx context.Context, t driver.Target, h driver.History, before time.Time) (baseBackup, bool, []string) {
	var notes []string
	fits := func(dir string) (baseBackup, string) {
		m, err := readMeta(dir)
		switch {
		case err != nil:
			return baseBackup{}, "its marker is unreadable (" + err.Error() + ")"
		case m.Method != methodBasebackup:
			return baseBackup{}, "it is a " + m.Method + " backup, which cannot be replayed with archived WAL"
		case m.State != backupVerified:
			return baseBackup{}, "its marker says " + m.State
		case !before.IsZero() && m.TakenAt.After(before):
			return baseBackup{}, "it was taken after the failure instant"
		}
		data := filepath.Join(dir, basebackupSubdir)
		if _, err := os.Stat(filepath.Join(data, "backup_label")); err != nil {
			return baseBackup{}, "its data directory has no backup_label"
		}
		return baseBackup{ID: filepath.Base(dir), Dir: dir, Data: data, TakenAt: m.TakenAt, Meta: m}, ""
	}
	seen := ""
	if h != nil {
		rec, ok, err := h.LatestBackup(ctx, t.Name)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("history store unavailable (%v): looking in backup_dir", err))
		case !ok:
			notes = append(notes, "no verified backup in the history store")
		case rec.RemovedAt != nil:
			notes = append(notes, "the newest verified backup on record, "+rec.Path+", was removed")
		default:
			bb, why := fits(rec.Path)
			if why == "" {
				bb.Recorded, bb.Bytes = "history store", rec.Bytes
				return bb, true, notes
			}
			seen = rec.Path
			notes = append(notes, "the newest verified backup on record, "+rec.Path+", is not used: "+why)
		}
	}
	if t.BackupDir == "" {
		return baseBackup{}, false, notes
	}
	root := backupRoot(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		return baseBackup{}, false, notes
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		dir := filepath.Join(root, n)
		if dir == seen {
			continue
		}
		if bb, why := fits(dir); why == "" {
			bb.Recorded, bb.Bytes = "backup_dir marker", DirSize(dir)
			return bb, true, notes
		}
	}
	return baseBackup{}, false, notes
}
