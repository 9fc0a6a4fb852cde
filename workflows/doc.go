// Package workflows holds the orchestration of Themis Maintenance: the
// maintenance workflow that one schedule run (a job) executes. Workflow code
// is deterministic: it only decides what runs when — the window check, the
// ordered task loop, the halt policy, cancellation and the progress query —
// and leaves all I/O to activities.
package workflows
