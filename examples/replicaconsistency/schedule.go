package replicaconsistency

import "github.com/themis-maintenance/themis/domain"

// ScheduleName is the name of the weekly schedule.
const ScheduleName = "Weekly Replica Consistency"

// WeeklySchedule is the schedule that runs the check on target every Sunday
// at 04:00 UTC, inside a 04:00–06:00 window. It is created disabled, like
// the built-in defaults: an operator enables it once the target's
// replica_dsns are configured. Create it through the API (POST
// /api/v1/maintenance/schedules with this spec as JSON) or with the CLI:
//
//	themisctl schedule create --name "Weekly Replica Consistency" --target orders \
//	  --tasks replica_consistency_check --cron "0 4 * * 0" --window 4-6 --disabled
func WeeklySchedule(target string) domain.ScheduleSpec {
	spec := domain.NewScheduleSpec(target)
	spec.Name = ScheduleName
	spec.Description = "Compare each replica with the primary (row counts and sample checksums)"
	spec.Frequency = domain.FrequencyCustom
	spec.CronExpression = "0 4 * * 0"
	spec.WindowStartHour, spec.WindowEndHour = 4, 6
	spec.Tasks = []domain.TaskType{TaskType}
	spec.Enabled = false
	return spec
}
