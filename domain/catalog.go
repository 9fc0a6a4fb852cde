package domain

// The built-in task types, registered below in the order the reference
// orchestrator lists them (docs/MAINTENANCE_SCHEDULE.md describes each).
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

// Option specs shared by several task types.
var (
	optParallelism = OptionSpec{Kind: OptionInt, Min: 1, Max: 64, Default: 2, Help: "tables or indexes worked on at once"}
	// Longer lock waits queue writers behind the task, longer statements
	// hold their locks longer: above the PostgreSQL driver's defaults
	// (10 s, 2 h) they need the admin scope.
	optLockTimeout = OptionSpec{Kind: OptionInt, Min: 0, Max: 86_400_000, Default: 0, WriterMax: ptr(10_000),
		Help: "lock_timeout for lock-taking statements, ms (0 = driver default); above 10000 needs the admin scope"}
	optStmtTimeout = OptionSpec{Kind: OptionInt, Min: 0, Max: 86_400_000, Default: 0, WriterMax: ptr(7_200_000),
		Help: "statement_timeout, ms (0 = driver default); above 7200000 (2 h) needs the admin scope"}
	optBloatPct = OptionSpec{Kind: OptionFloat, Min: 0, Max: 100, Default: 30, Help: "fragmentation percentage at or above which a relation is HIGH"}
	optMinBytes = OptionSpec{Kind: OptionInt, Min: 0, Max: 1 << 50, Default: 1 << 20, EngineDefaults: map[string]any{"sqlite": 64 << 10},
		Help: "relations smaller than this are not reported (SQLite: 65536)"}
	// How index_rebuild and index_reorganize group a table's rebuilds.
	optRebuildUnit = OptionSpec{Kind: OptionEnum, Values: []string{"table", "index"}, Default: "table",
		Help: "PostgreSQL: table = one REINDEX TABLE CONCURRENTLY when every index of a table is chosen (one round of lock waits); index = one REINDEX INDEX CONCURRENTLY per index, the throttle consulted between them (finer pacing)"}
	optRebuildPct = OptionSpec{Kind: OptionFloat, Min: 0, Max: 100, Default: 30,
		Help: "fragmentation percentage at or above which an index is rebuilt (SQLite: with neither this nor min_size_bytes set, every index is rebuilt)"}
	// The cheap-first tier of index_rebuild and index_reorganize (as Ola
	// Hallengren's 5 % / 30 %): indexes the catalog estimate puts below it
	// are not measured exactly.
	optLowPct = OptionSpec{Kind: OptionFloat, Min: 0, Max: 100, Default: 5,
		Help: "PostgreSQL: estimated fragmentation percentage (from catalog statistics) at or above which an index is measured exactly with pgstatindex; 0 measures every candidate"}
	optMinRebuild = OptionSpec{Kind: OptionInt, Min: 0, Max: 1 << 50, Default: 1 << 20, EngineDefaults: map[string]any{"sqlite": 64 << 10},
		Help: "indexes smaller than this are not rebuilt (SQLite: 65536)"}
)

// timeoutOptions are the session timeouts of a task that takes locks.
func timeoutOptions(extra map[string]OptionSpec) map[string]OptionSpec {
	out := map[string]OptionSpec{"lock_timeout_ms": optLockTimeout, "statement_timeout_ms": optStmtTimeout}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// throttleOptions are the pacing options of a heavy task on PostgreSQL
// (docs/MAINTENANCE_SCHEDULE.md, "Throttling and pacing"), added to opts.
func throttleOptions(opts map[string]OptionSpec) map[string]OptionSpec {
	for k, v := range map[string]OptionSpec{
		"parallel_workers": {Kind: OptionInt, Min: -1, Max: 64, Default: -1,
			Help: "PostgreSQL: max_parallel_maintenance_workers of the task's sessions: parallel workers one VACUUM, CREATE INDEX or REINDEX may start beside its own backend (-1 = the server's setting; 0 = none, the gentlest on a small host)"},
		"max_lag_ms": {Kind: OptionInt, Min: 0, Max: 86_400_000, Default: 1500,
			Help: "PostgreSQL: replica replay lag above which the task waits between units of work (0 = off)"},
		"critical_lag_ms": {Kind: OptionInt, Min: 0, Max: 86_400_000, Default: 0,
			Help: "PostgreSQL: replica lag at which the task hibernates for hibernate_s and cancels a statement that blocks others past lock_timeout (0 = off)"},
		"max_active_backends": {Kind: OptionInt, Min: 0, Max: 100_000, Default: 0,
			Help: "PostgreSQL: active backends (not the task's own) above which the task waits (0 = off)"},
		"critical_active_backends": {Kind: OptionInt, Min: 0, Max: 100_000, Default: 0,
			Help: "PostgreSQL: active backends at which the task hibernates (0 = off)"},
		"hibernate_s": {Kind: OptionInt, Min: 1, Max: 86_400, Default: 60,
			Help: "PostgreSQL: how long a critical level makes the task hibernate, seconds"},
		// SQL run on the target: admin scope.
		"throttle_query": {Kind: OptionText, Default: "", AdminOnly: true,
			Help: "PostgreSQL: a read-only query returning one number; above throttle_threshold the task waits (admin scope)"},
		"throttle_threshold": {Kind: OptionFloat, Min: -1e18, Max: 1e18, Default: 0.0,
			Help: "PostgreSQL: the value of throttle_query above which the task waits"},
		"intensity": {Kind: OptionFloat, Min: 0.01, Max: 1, Default: 1.0,
			Help: "PostgreSQL: share of time spent working; after each unit the task sleeps its duration × (1/intensity − 1) (1 = no sleep)"},
	} {
		opts[k] = v
	}
	return opts
}

// vacuumCostOptions are the cost-based delay of VACUUM and ANALYZE on the
// task's sessions (PostgreSQL's vacuum_cost_delay / vacuum_cost_limit, as
// autovacuum paces itself), added to opts: pacing inside a unit, where
// the throttle acts between units.
func vacuumCostOptions(opts map[string]OptionSpec) map[string]OptionSpec {
	opts["cost_delay_ms"] = OptionSpec{Kind: OptionFloat, Min: 0, Max: 100, Default: 0.0,
		Help: "PostgreSQL: vacuum_cost_delay of the task's sessions: VACUUM and ANALYZE sleep this long after each cost_limit worth of page work, as autovacuum does (0 = no sleep, as a manual VACUUM)"}
	opts["cost_limit"] = OptionSpec{Kind: OptionInt, Min: 1, Max: 10000, Default: 200,
		Help: "PostgreSQL: vacuum_cost_limit of the task's sessions (with cost_delay_ms)"}
	return opts
}

func init() {
	for _, def := range []TaskDef{
		{Type: TaskMetricsCollection, Title: "Metrics collection", Description: "Snapshot database statistics and size into the history store"},
		{Type: TaskFragmentationMonitoring, Title: "Fragmentation monitoring", Description: "Measure table and index fragmentation; HIGH alert over the threshold",
			Options: map[string]OptionSpec{"high_threshold_pct": optBloatPct, "min_size_bytes": optMinBytes}},
		{Type: TaskQuotaCheck, Title: "Quota check", Description: "Compare database size with the target's quota; alert over 80 %",
			Options: map[string]OptionSpec{"alert_pct": {Kind: OptionFloat, Min: 1, Max: 100, Default: 80, Help: "usage percentage that raises an alert"}}},
		{Type: TaskConsistencyCheck, Title: "Consistency check", Description: "Integrity check of indexes and structure",
			Options: throttleOptions(timeoutOptions(map[string]OptionSpec{"parallelism": optParallelism}))},
		{Type: TaskReplicaValidation, Title: "Replica validation", Description: "Replication lag per replica; degraded > 1 s, critical > 5 s",
			Options: map[string]OptionSpec{
				"degraded_lag_ms": {Kind: OptionInt, Min: 0, Max: 86_400_000, Default: 1000, Help: "lag above which a replica is degraded"},
				"critical_lag_ms": {Kind: OptionInt, Min: 0, Max: 86_400_000, Default: 5000, Help: "lag above which a replica is critical"},
			}},
		{Type: TaskPerformanceAnalysis, Title: "Performance analysis", Description: "Top statements, lock waits and long transactions",
			Options: map[string]OptionSpec{
				"top_n":            {Kind: OptionInt, Min: 1, Max: 1000, Default: 10, Help: "statements to report"},
				"long_txn_seconds": {Kind: OptionInt, Min: 1, Max: 86_400, Default: 300, Help: "transactions older than this are reported"},
			}},
		{Type: TaskMVCCCleanup, Title: "MVCC cleanup", Description: "VACUUM (ANALYZE) tables past a dead-tuple or xid-age threshold",
			Timeout: TimeoutLong, Heavy: true, // VACUUM
			Options: vacuumCostOptions(throttleOptions(timeoutOptions(map[string]OptionSpec{
				"parallelism":          optParallelism,
				"dead_tuple_threshold": {Kind: OptionInt, Min: 0, Max: 1 << 50, Default: 1000, Help: "dead tuples at which a table is vacuumed"},
				"xid_age_threshold":    {Kind: OptionInt, Min: 0, Max: 2_000_000_000, Default: 100_000_000, Help: "transaction-id age at which a table is vacuumed"},
			})))},
		{Type: TaskFullCheckDB, Title: "Full check", Description: "Full integrity check of every table and index",
			Timeout: TimeoutLong, Heavy: true, // full scan; parent checks take SHARE locks
			Options: throttleOptions(timeoutOptions(map[string]OptionSpec{"parallelism": optParallelism}))},
		{Type: TaskBackupVerification, Title: "Backup verification", Description: "Take a backup, restore it into a scratch copy and verify it",
			Timeout: TimeoutLong, Heavy: true, // backup, restore, prune
			Options: map[string]OptionSpec{
				"method": {Kind: OptionEnum, Values: []string{"native", "pg_basebackup", "pg_dump"}, Default: "native", Help: "backup method"},
				// Fewer kept backups deletes verified ones: admin scope.
				"keep_backups": {Kind: OptionInt, Min: 1, Max: 1000, Default: 3, WriterMin: ptr(3),
					Help: "verified backups kept in backup_dir; below 3 (older verified backups are deleted) needs the admin scope"},
			}},
		{Type: TaskCapacityTrendAnalysis, Title: "Capacity trend analysis", Description: "Fit a growth trend to size samples and forecast the runway",
			Options: map[string]OptionSpec{
				"runway_alert_days": {Kind: OptionInt, Min: 1, Max: 3650, Default: 30, Help: "runway below which an alert is raised"},
				"lookback_days":     {Kind: OptionInt, Min: 1, Max: 3650, Default: 90, Help: "samples older than this are not used"},
			}},
		{Type: TaskIndexFragmentationReport, Title: "Index fragmentation report", Description: "Per-index fragmentation report with HIGH alerts",
			Options: map[string]OptionSpec{"high_threshold_pct": optBloatPct, "min_size_bytes": optMinBytes}},
		{Type: TaskDisasterRecoveryDrill, Title: "Disaster-recovery drill", Description: "Restore into a scratch instance with approvals and measure RTO/RPO",
			// The drill's restore is heavy; it starts a drill, which POST /drills
			// allows the admin scope only.
			Heavy: true, AdminOnly: true},
		{Type: TaskBaselineUpdate, Title: "Baseline update", Description: "Time probe queries, compare with the baseline and store the new one",
			Options: map[string]OptionSpec{"regression_pct": {Kind: OptionFloat, Min: 1, Max: 10_000, Default: 50, Help: "slow-down against the baseline that is a regression"}}},
		{Type: TaskIndexRebuild, Title: "Index rebuild", Description: "Rebuild indexes over the fragmentation threshold",
			Timeout: TimeoutLong, Heavy: true, // REINDEX
			Options: throttleOptions(timeoutOptions(map[string]OptionSpec{"high_threshold_pct": optRebuildPct, "low_threshold_pct": optLowPct, "min_size_bytes": optMinRebuild, "parallelism": optParallelism, "rebuild_unit": optRebuildUnit}))},
		{Type: TaskIndexReorganize, Title: "Index reorganize", Description: "Reorganize moderately fragmented indexes",
			Timeout: TimeoutLong, Heavy: true,
			Options: throttleOptions(timeoutOptions(map[string]OptionSpec{"high_threshold_pct": optRebuildPct, "low_threshold_pct": optLowPct, "min_size_bytes": optMinRebuild, "parallelism": optParallelism, "rebuild_unit": optRebuildUnit}))},
		{Type: TaskStatisticsUpdate, Title: "Statistics update", Description: "Refresh planner statistics",
			Options: vacuumCostOptions(throttleOptions(timeoutOptions(map[string]OptionSpec{"parallelism": optParallelism})))},
		{Type: TaskStorageCompaction, Title: "Storage compaction", Description: "Reclaim free space (no exclusive-lock rewrite unless full=true)",
			Timeout: TimeoutLong, Heavy: true, // VACUUM FULL when full=true
			Options: vacuumCostOptions(throttleOptions(timeoutOptions(map[string]OptionSpec{
				"full": {Kind: OptionBool, Default: false, AdminOnly: true, Help: "allow exclusive-lock rewrites such as VACUUM FULL (admin scope)"},
			})))},
		{Type: TaskOrphanCleanup, Title: "Orphan cleanup", Description: "Drop leftovers of failed operations (invalid indexes, stale files)",
			Heavy:   true, // drops leftovers, deletes backup files
			Options: map[string]OptionSpec{"lock_timeout_ms": optLockTimeout}},
		{Type: TaskVectorReindex, Title: "Vector reindex", Description: "Rebuild vector (HNSW/IVFFlat) indexes",
			Heavy: true, Options: timeoutOptions(nil)},
	} {
		MustRegisterTask(def)
	}
}

func ptr(f float64) *float64 { return &f }
