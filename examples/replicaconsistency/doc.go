// Package replicaconsistency is a worked example of a Themis module: it
// adds a health probe, a task type and a schedule without touching the
// service's packages. docs/MODULE_INTEGRATION_GUIDE.md walks through it.
//
// # The probe
//
// The probe "replica-consistency" (probe.go) reports the replica lag of
// every PostgreSQL target that has replicas: each replica_dsns entry is
// measured from inside (now() - pg_last_xact_replay_timestamp(), 0 when the
// standby has replayed all it received, as driver/postgres measures it for
// replica_validation); a target without replica_dsns is measured through its
// primary's pg_stat_replication. A replica lagging more than 1000 ms is
// degraded, more than 5000 ms critical (ProbeOptions sets other
// thresholds); one that cannot be reached, or is not a standby, is critical
// with a message naming it (host:port, never the DSN). The signal's details
// list every replica with its lag_ms and status, and max_lag_ms.
//
//	probe, err := replicaconsistency.NewProbe(targets, replicaconsistency.ProbeOptions{})
//	health.RegisterProbe(replicaconsistency.ProbeName, probe.Check)
//
// The API process runs it in the background with the built-in probes; GET
// /api/v1/maintenance/health and `themisctl health` show it.
//
// # The task type
//
// replica_consistency_check (task.go) compares the primary with each
// replica. TaskDef is its one registration (title, description, options
// with defaults and bounds, a short timeout, not heavy); runCheck is its
// PostgreSQL implementation, added with driver.Implement. For each of the
// sample_tables largest tables it reads the row count and an md5 of the
// first sample_rows rows by primary key on the primary, waits for the
// replica to replay up to the primary's WAL position, reads the replica,
// and reads the primary again: the replica is consistent when it shows a
// state the primary had, inconsistent (a CRITICAL alert) when the primary
// stood still and the replica differs. A table written to during three
// comparisons in a row is reported busy; a replica that does not catch up
// within catchup_timeout_s is reported lagging (HIGH). It reports progress
// after each table with a checkpoint of the tables done, which a retried
// attempt skips.
//
// # The schedule
//
// WeeklySchedule (schedule.go) is "Weekly Replica Consistency": Sundays at
// 04:00 UTC, created disabled. POST it to /api/v1/maintenance/schedules, or
// run the themisctl command in its comment.
//
// # Linking it in
//
// Register does all three registrations; call it before the worker and the
// API start. cmd/themisctl-replica is themisctl with the module linked in,
// the binary a deployment builds and runs in place of themisctl on its
// workers and API processes:
//
//	go build -o bin/themisctl-replica ./examples/replicaconsistency/cmd/themisctl-replica
//
// example_test.go runs it all on the real dev server with a PostgreSQL
// primary and a streaming replica.
package replicaconsistency
