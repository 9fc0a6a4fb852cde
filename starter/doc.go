// Package starter is the one client-side service of Themis Maintenance. It
// maps schedules onto Temporal Schedules (create, describe, update, pause,
// trigger, delete, list), jobs onto workflow executions (start, describe,
// query progress, list through visibility, cancel), and returns domain errors
// (domain.ErrNotFound, domain.ErrConflict, domain.ErrUnavailable) so callers
// never see Temporal types. It implements api.Service.
package starter
