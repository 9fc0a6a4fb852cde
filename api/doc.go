// Package api is the HTTP gateway of Themis Maintenance: a gin router under
// /api/v1/maintenance that translates requests into calls of a Service
// (implemented against Temporal by package starter) and renders the results.
//
// The gateway holds no Temporal code. It owns request decoding and strict
// validation of schedule entries (SPEC §2), the problem+json error format with
// stable codes (errors.go is the one place where errors become statuses),
// request ids, body limits, the authenticator slot, and the OpenAPI 3
// document (openapi.yaml, served as YAML and JSON) with a browsable docs page.
//
// Endpoints (all under /api/v1/maintenance unless noted):
//
//	GET    /status
//	POST   /schedules                 201 schedule
//	GET    /schedules                 200 {schedules, count}
//	GET    /schedules/{id}            200 schedule
//	PUT    /schedules/{id}            200 schedule (replace writable fields)
//	PATCH  /schedules/{id}            200 schedule (merge given fields)
//	DELETE /schedules/{id}            200 {id, deleted}
//	POST   /schedules/{id}/run        202 job
//	GET    /jobs                      200 {jobs, count, next_page_token}
//	GET    /jobs/{id}                 200 job
//	POST   /jobs/{id}/cancel          200 job; 409 when not active
//	GET    /healthz, /readyz          process liveness / Temporal readiness
//	GET    /api/v1/openapi.yaml, /api/v1/openapi.json, /docs
package api
