// Package domain holds the vocabulary of Themis Maintenance that every other
// package shares: task types and their wire names, the schedule entry and its
// validation, maintenance-window logic, the default schedules, and job and
// task states. It imports no other package of this module and does no I/O.
package domain
