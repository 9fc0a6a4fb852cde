package domain

import (
	"fmt"
	"slices"
	"strings"
)

// Drill strategies: how a drill restores its target (docs/DR_DRILL.md).
const (
	// DrillStrategyBackupRestore restores the latest verified backup (on
	// PostgreSQL with the archived WAL replayed to the failure instant).
	DrillStrategyBackupRestore = "backup_restore"
	// DrillStrategyReplicaClone copies the standby at drill time and
	// promotes the copy in isolation (PostgreSQL only).
	DrillStrategyReplicaClone = "replica_clone"
)

// DrillStrategies lists the strategies a drill request or a target's
// drill.strategy may name.
func DrillStrategies() []string {
	return []string{DrillStrategyBackupRestore, DrillStrategyReplicaClone}
}

// ValidateDrillStrategy accepts "" (the target's configured strategy, else
// the driver's default) and the names of DrillStrategies; anything else is
// a ValidationError on field "strategy".
func ValidateDrillStrategy(s string) error {
	if s == "" || slices.Contains(DrillStrategies(), s) {
		return nil
	}
	return invalid("strategy", "unknown drill strategy %q (want %s, or empty for the target's)", clipValue(s), strings.Join(DrillStrategies(), " or "))
}

// clipValue keeps a bad value short enough to echo in an error.
func clipValue(s string) string {
	const maxLen = 64
	if len(s) <= maxLen {
		return s
	}
	return fmt.Sprintf("%s…", s[:maxLen])
}
