// Package health is the extension API for health probes: a module reports
// its health by registering one probe,
//
//	health.RegisterProbe("replica-consistency", func(ctx context.Context) health.Signal {
//		lag, err := measureLag(ctx)
//		if err != nil {
//			return health.Signal{Status: health.Critical, Message: "unreachable: " + err.Error()}
//		}
//		return health.Signal{Status: health.OK, Message: fmt.Sprintf("lag %d ms", lag),
//			Details: map[string]any{"lag_ms": lag}}
//	})
//
// and GET /api/v1/maintenance/health (and `themisctl health`) lists it
// beside the built-in probes of the daemon: temporal, workers, jobs,
// history, audit and target:<name> for each target.
//
// A Runner calls every probe in the background, each in its own goroutine,
// with a timeout (10 s unless set): every 30 s, or every 5 s while the
// probe's latest signal is not OK (so a recovered module shows healthy
// soon), and at once when it is registered. The API reads only
// the Runner's cached report, so /health answers at once whatever the probes
// do. A probe that panics is reported as Unknown with the panic's value; a
// probe that has not answered when its timeout is up is reported as Unknown
// ("did not answer within 10s") and is not called again until that call has
// returned, so a hung probe costs one goroutine, never a pile of them.
//
// The overall status is the worst module status, where Unknown counts as
// Degraded: one critical module makes the report critical; otherwise any
// degraded or unknown module makes it degraded. Only a report with no
// probe at all is Unknown overall.
//
// Probes are kept in a Registry. RegisterProbe adds to Default, the
// registry every Themis API process runs beside its built-in probes;
// NewRegistry makes one of one's own (tests, or embedding a Runner).
package health
