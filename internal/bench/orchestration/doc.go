// Package orchestration is `make bench`: it measures what Themis Maintenance
// adds on top of Temporal, on one machine, and prints one table with each
// figure beside its reference and target (issue 10 of the project: reads
// that do not hammer Temporal, results without polling).
//
// It starts the stack as operators run it, as real processes on loopback:
// one file-backed Temporal dev server (the pinned CLI, with its Prometheus
// endpoint on), one `themisctl worker` and one `themisctl api` sharing a
// configuration, a data directory (SQLite history store) and the SQLite
// demo target. The bench process itself holds the clients, the load
// generator and a bare SDK worker of its own on its own task queue, the
// reference every orchestration figure is compared with:
//
//   - a forced 3-task Daily run through the API with "wait" (POST
//     /schedules/{id}/run {"force":true,"wait":"60s"}), client wall time and
//     server-side start → close from the workflow history, beside a bare SDK
//     workflow of 3 no-op activities (ExecuteWorkflow + Get), runs
//     interleaved;
//   - per-task orchestration overhead: activity scheduled → completed minus
//     the task's own work as the activity reports it (TaskOutput), beside the
//     bare workflow's no-op activities;
//   - jobs per minute one worker sustains with a light 1-task job, beside
//     bare SDK workflows of one no-op activity at the same concurrency;
//   - GET /schedules with 1,000 schedules, GET /jobs?limit=100 with 1,000
//     jobs and GET /health with 20 probes one of them hanging (an API
//     process of the variant binary cmd/themisctl-bench-health): p50, p99,
//     req/s and errors at 16 connections;
//   - Temporal visibility and per-item calls per 1,000 list requests, from
//     the dev server's frontend request counters, net of the calls the
//     processes make while idle;
//   - the worker's and the API's resident memory.
//
// Every phase is bounded in time; a phase that could not reach its size
// says how far it got in the table's notes. Schedules are created through
// the API for a bounded time and the rest directly as Temporal Schedules in
// the shape the API gives them (the API's create lists every schedule, so
// 1,000 creations through it take many minutes); jobs are light jobs started
// on the worker's task queue as the API starts them, as many as fit.
package orchestration
