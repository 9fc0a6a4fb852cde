package domain

import (
	"fmt"
	"sort"
)

// TaskType is one maintenance operation; its string value is the wire name
// used in schedule entries, job records and the API.
type TaskType string

// The task types of SPEC §4, in the order the reference orchestrator lists them.
const (
	TaskMetricsCollection        TaskType = "metrics_collection"
	TaskFragmentationMonitoring  TaskType = "fragmentation_monitoring"
	TaskQuotaCheck               TaskType = "quota_check"
	TaskConsistencyCheck         TaskType = "consistency_check"
	TaskReplicaValidation        TaskType = "replica_validation"
	TaskPerformanceAnalysis      TaskType = "performance_analysis"
	TaskMVCCCleanup              TaskType = "mvcc_cleanup"
	TaskFullCheckDB              TaskType = "full_checkdb"
	TaskBackupVerification       TaskType = "backup_verification"
	TaskCapacityTrendAnalysis    TaskType = "capacity_trend_analysis"
	TaskIndexFragmentationReport TaskType = "index_fragmentation_report"
	TaskDisasterRecoveryDrill    TaskType = "disaster_recovery_drill"
	TaskBaselineUpdate           TaskType = "baseline_update"
	TaskIndexRebuild             TaskType = "index_rebuild"
	TaskIndexReorganize          TaskType = "index_reorganize"
	TaskStatisticsUpdate         TaskType = "statistics_update"
	TaskStorageCompaction        TaskType = "storage_compaction"
	TaskOrphanCleanup            TaskType = "orphan_cleanup"
	TaskVectorReindex            TaskType = "vector_reindex"
)

// TaskInfo describes a task type for operators (API /task-types, UI summaries).
type TaskInfo struct {
	Type        TaskType
	Title       string
	Description string
	// Options lists the task_options keys this task type accepts.
	Options map[string]OptionSpec
}

// OptionKind is the JSON type a task option takes.
type OptionKind string

// Option kinds.
const (
	OptionInt   OptionKind = "integer"
	OptionFloat OptionKind = "number"
	OptionBool  OptionKind = "boolean"
	OptionEnum  OptionKind = "enum"
)

// OptionSpec constrains one task option value.
type OptionSpec struct {
	Kind OptionKind
	// Min and Max bound numeric options (inclusive).
	Min, Max float64
	// Values lists the allowed strings of an enum option.
	Values []string
	Help   string
}

var (
	optParallelism = OptionSpec{Kind: OptionInt, Min: 1, Max: 64, Help: "tables or indexes worked on at once"}
	optLockTimeout = OptionSpec{Kind: OptionInt, Min: 0, Max: 86_400_000, Help: "lock_timeout for lock-taking statements, ms (0 = driver default)"}
	optStmtTimeout = OptionSpec{Kind: OptionInt, Min: 0, Max: 86_400_000, Help: "statement_timeout, ms (0 = driver default)"}
	optBloatPct    = OptionSpec{Kind: OptionFloat, Min: 0, Max: 100, Help: "fragmentation percentage at or above which a relation is HIGH"}
	optMinBytes    = OptionSpec{Kind: OptionInt, Min: 0, Max: 1 << 50, Help: "relations smaller than this are not reported"}
	optMinRebuild  = OptionSpec{Kind: OptionInt, Min: 0, Max: 1 << 50, Help: "indexes smaller than this are not rebuilt (default 1048576)"}
)

var taskInfos = []TaskInfo{
	{TaskMetricsCollection, "Metrics collection", "Snapshot database statistics and size into the history store", nil},
	{TaskFragmentationMonitoring, "Fragmentation monitoring", "Measure table and index fragmentation; HIGH alert over the threshold",
		map[string]OptionSpec{"high_threshold_pct": optBloatPct, "min_size_bytes": optMinBytes}},
	{TaskQuotaCheck, "Quota check", "Compare database size with the target's quota; alert over 80 %",
		map[string]OptionSpec{"alert_pct": {Kind: OptionFloat, Min: 1, Max: 100, Help: "usage percentage that raises an alert (default 80)"}}},
	{TaskConsistencyCheck, "Consistency check", "Integrity check of indexes and structure",
		map[string]OptionSpec{"parallelism": optParallelism, "lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}},
	{TaskReplicaValidation, "Replica validation", "Replication lag per replica; degraded > 1 s, critical > 5 s",
		map[string]OptionSpec{
			"degraded_lag_ms": {Kind: OptionInt, Min: 0, Max: 86_400_000, Help: "lag above which a replica is degraded (default 1000)"},
			"critical_lag_ms": {Kind: OptionInt, Min: 0, Max: 86_400_000, Help: "lag above which a replica is critical (default 5000)"},
		}},
	{TaskPerformanceAnalysis, "Performance analysis", "Top statements, lock waits and long transactions",
		map[string]OptionSpec{
			"top_n":            {Kind: OptionInt, Min: 1, Max: 1000, Help: "statements to report (default 10)"},
			"long_txn_seconds": {Kind: OptionInt, Min: 1, Max: 86_400, Help: "transactions older than this are reported (default 300)"},
		}},
	{TaskMVCCCleanup, "MVCC cleanup", "VACUUM (ANALYZE) tables past a dead-tuple or xid-age threshold",
		map[string]OptionSpec{
			"parallelism":          optParallelism,
			"dead_tuple_threshold": {Kind: OptionInt, Min: 0, Max: 1 << 50, Help: "dead tuples at which a table is vacuumed (default 1000)"},
			"xid_age_threshold":    {Kind: OptionInt, Min: 0, Max: 2_000_000_000, Help: "transaction-id age at which a table is vacuumed (default 100000000)"},
			"lock_timeout_ms":      optLockTimeout, "statement_timeout_ms": optStmtTimeout,
		}},
	{TaskFullCheckDB, "Full check", "Full integrity check of every table and index",
		map[string]OptionSpec{"parallelism": optParallelism, "lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}},
	{TaskBackupVerification, "Backup verification", "Take a backup, restore it into a scratch copy and verify it",
		map[string]OptionSpec{
			"method":       {Kind: OptionEnum, Values: []string{"native", "pg_basebackup", "pg_dump"}, Help: "backup method (default native)"},
			"keep_backups": {Kind: OptionInt, Min: 1, Max: 1000, Help: "verified backups kept in backup_dir (default 3)"},
		}},
	{TaskCapacityTrendAnalysis, "Capacity trend analysis", "Fit a growth trend to size samples and forecast the runway",
		map[string]OptionSpec{
			"runway_alert_days": {Kind: OptionInt, Min: 1, Max: 3650, Help: "runway below which an alert is raised (default 30)"},
			"lookback_days":     {Kind: OptionInt, Min: 1, Max: 3650, Help: "samples older than this are not used (default 90)"},
		}},
	{TaskIndexFragmentationReport, "Index fragmentation report", "Per-index fragmentation report with HIGH alerts",
		map[string]OptionSpec{"high_threshold_pct": optBloatPct, "min_size_bytes": optMinBytes}},
	{TaskDisasterRecoveryDrill, "Disaster-recovery drill", "Restore into a scratch instance with approvals and measure RTO/RPO", nil},
	{TaskBaselineUpdate, "Baseline update", "Time probe queries, compare with the baseline and store the new one",
		map[string]OptionSpec{"regression_pct": {Kind: OptionFloat, Min: 1, Max: 10_000, Help: "slow-down against the baseline that is a regression (default 50)"}}},
	{TaskIndexRebuild, "Index rebuild", "Rebuild indexes over the fragmentation threshold",
		map[string]OptionSpec{"high_threshold_pct": optBloatPct, "min_size_bytes": optMinRebuild, "parallelism": optParallelism, "lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}},
	{TaskIndexReorganize, "Index reorganize", "Reorganize moderately fragmented indexes",
		map[string]OptionSpec{"high_threshold_pct": optBloatPct, "min_size_bytes": optMinRebuild, "parallelism": optParallelism, "lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}},
	{TaskStatisticsUpdate, "Statistics update", "Refresh planner statistics",
		map[string]OptionSpec{"parallelism": optParallelism, "lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}},
	{TaskStorageCompaction, "Storage compaction", "Reclaim free space (no exclusive-lock rewrite unless full=true)",
		map[string]OptionSpec{"full": {Kind: OptionBool, Help: "allow exclusive-lock rewrites such as VACUUM FULL"}, "lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}},
	{TaskOrphanCleanup, "Orphan cleanup", "Drop leftovers of failed operations (invalid indexes, stale files)",
		map[string]OptionSpec{"lock_timeout_ms": optLockTimeout}},
	{TaskVectorReindex, "Vector reindex", "Rebuild vector (HNSW/IVFFlat) indexes",
		map[string]OptionSpec{"lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}},
}

var taskIndex = func() map[TaskType]TaskInfo {
	m := make(map[TaskType]TaskInfo, len(taskInfos))
	for _, ti := range taskInfos {
		m[ti.Type] = ti
	}
	return m
}()

// AllTaskTypes returns every task type in the canonical order.
func AllTaskTypes() []TaskType {
	out := make([]TaskType, len(taskInfos))
	for i, ti := range taskInfos {
		out[i] = ti.Type
	}
	return out
}

// Info returns the description of a task type; ok is false for an unknown name.
func Info(t TaskType) (TaskInfo, bool) {
	ti, ok := taskIndex[t]
	return ti, ok
}

// Title is the operator-facing title of a task type, or its wire name if unknown.
func (t TaskType) Title() string {
	if ti, ok := taskIndex[t]; ok {
		return ti.Title
	}
	return string(t)
}

// Valid reports whether t is a known task type.
func (t TaskType) Valid() bool {
	_, ok := taskIndex[t]
	return ok
}

// ParseTaskType returns the task type with wire name s, or an error naming it.
// Unknown names are never mapped onto a known one.
func ParseTaskType(s string) (TaskType, error) {
	t := TaskType(s)
	if !t.Valid() {
		return "", fmt.Errorf("unknown task type %q", s)
	}
	return t, nil
}

// OptionKeys returns the sorted option names a task type accepts.
func OptionKeys(t TaskType) []string {
	ti := taskIndex[t]
	keys := make([]string, 0, len(ti.Options))
	for k := range ti.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// heavyTasks write to the target or its files, take locks that block
// writers, or copy the whole database: at most a target's max_heavy_tasks
// of them run on it at once, cluster-wide. Every other task is a light,
// read-mostly one that may overlap anything.
var heavyTasks = map[TaskType]bool{
	TaskMVCCCleanup:           true, // VACUUM
	TaskFullCheckDB:           true, // full scan; parent checks take SHARE locks
	TaskBackupVerification:    true, // backup, restore, prune
	TaskDisasterRecoveryDrill: true, // the drill's restore
	TaskIndexRebuild:          true, // REINDEX
	TaskIndexReorganize:       true,
	TaskStorageCompaction:     true, // VACUUM FULL when full=true
	TaskOrphanCleanup:         true, // drops leftovers, deletes backup files
	TaskVectorReindex:         true,
}

// Heavy reports whether t is a heavy task (see heavyTasks).
func (t TaskType) Heavy() bool { return heavyTasks[t] }
