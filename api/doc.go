// Package api is the HTTP gateway of Themis Maintenance: a gin router under
// /api/v1/maintenance that translates requests into calls of a Service
// (implemented against Temporal by package starter) and renders the results.
//
// The gateway holds no Temporal code. It owns request decoding and strict
// validation of schedule entries (docs/MAINTENANCE_SCHEDULE.md), the problem+json error format with
// stable codes (errors.go is the one place where errors become statuses),
// request ids, body limits, the authenticator slot (package auth fills it
// with bearer tokens and scopes), the audit hook (audit.go: every write and
// every 401/403 goes to an AuditLog such as package audit's file log, and
// writes are refused while it cannot be written), and the OpenAPI 3 document
// (openapi.yaml, served as YAML and JSON) with a browsable docs page.
//
// Services: Service (schedules, jobs, status) is required; DrillService and
// InfoService come in through Options.Drills and Options.Info (package
// starter implements all three), and their endpoints answer 503 without them.
//
// Endpoints (all under /api/v1/maintenance unless noted), with their scope:
//
//	GET    /status                    read   200 status
//	GET    /health                    read   200 cached health report
//	GET    /task-types                read   200 {task_types, count}
//	GET    /targets                   read   200 {targets, count}
//	GET    /targets/{name}/throttle   read   200 manual pause (503 without ThrottleService)
//	POST   /targets/{name}/throttle   write  200 pause set ({"for"|"until", "reason"})
//	DELETE /targets/{name}/throttle   write  200 pause cleared
//	POST   /schedules                 write  201 schedule
//	GET    /schedules                 read   200 {schedules, count}
//	GET    /schedules/{id}            read   200 schedule
//	PUT    /schedules/{id}            write  200 schedule (replace writable fields)
//	PATCH  /schedules/{id}            write  200 schedule (merge given fields)
//	DELETE /schedules/{id}            write  200 {id, deleted}
//	POST   /schedules/{id}/run        write  202 job ({"force":true} needs admin)
//	GET    /jobs                      read   200 {jobs, count, next_page_token}
//	GET    /jobs/{id}                 read   200 job
//	POST   /jobs/{id}/cancel          write  200 job; 409 when not active
//	POST   /drills                    admin  202 drill
//	GET    /drills                    read   200 {drills, count}
//	GET    /drills/{id}               read   200 drill
//	POST   /drills/{id}/approve       admin  200 drill; 409 when not awaited
//	POST   /drills/{id}/reject        admin  200 drill; 409 when not awaited
//	POST   /drills/{id}/abort         admin  200 drill; 409 when finished
//	GET    /audit                     admin  200 {events, count, truncated}
//	GET    /healthz, /readyz          process liveness / Temporal readiness
//	GET    /api/v1/openapi.yaml, /api/v1/openapi.json, /docs
package api
