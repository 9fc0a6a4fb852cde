package domain

import "strings"

// DefaultSchedule is one of the four schedules created, disabled, at first start.
type DefaultSchedule struct {
	ID   string
	Spec ScheduleSpec
}

// DefaultSchedules returns the default schedules (docs/README.md) for target,
// disabled, with their fixed ids so that creating them is idempotent.
// supported reports whether the target's driver (called driver) can run a
// task; nil means every task. Tasks it cannot run are left out and named in
// the description; a default left with no task is not returned.
func DefaultSchedules(target, driver string, supported func(TaskType) bool) []DefaultSchedule {
	mk := func(id, name string, f Frequency, start, end int, halt bool, all ...TaskType) DefaultSchedule {
		cron, _ := DeriveCron(f, start)
		desc := "Default " + string(f) + " maintenance"
		tasks := make([]TaskType, 0, len(all))
		var left []string
		for _, t := range all {
			if supported == nil || supported(t) {
				tasks = append(tasks, t)
			} else {
				left = append(left, string(t))
			}
		}
		if len(left) > 0 {
			desc += " (" + strings.Join(left, ", ") + " not supported by " + driver + ")"
		}
		return DefaultSchedule{ID: id, Spec: ScheduleSpec{
			Name: name, Description: desc,
			Target: target, Frequency: f, CronExpression: cron, Timezone: "UTC",
			Tasks: tasks, TaskOptions: map[TaskType]TaskOptions{},
			Enabled: false, EnforceWindow: true, WindowStartHour: start, WindowEndHour: end,
			HaltOnTaskFailure: halt,
		}}
	}
	all := []DefaultSchedule{
		mk("daily-maintenance", "Daily Maintenance", FrequencyDaily, 2, 6, false,
			TaskMetricsCollection, TaskFragmentationMonitoring, TaskQuotaCheck),
		mk("weekly-maintenance", "Weekly Maintenance", FrequencyWeekly, 2, 6, false,
			TaskConsistencyCheck, TaskReplicaValidation, TaskPerformanceAnalysis, TaskMVCCCleanup),
		mk("monthly-maintenance", "Monthly Maintenance", FrequencyMonthly, 2, 6, false,
			TaskFullCheckDB, TaskBackupVerification, TaskCapacityTrendAnalysis, TaskIndexFragmentationReport),
		mk("quarterly-maintenance", "Quarterly Maintenance", FrequencyQuarterly, 0, 6, true,
			TaskDisasterRecoveryDrill, TaskBaselineUpdate),
	}
	out := all[:0]
	for _, d := range all {
		if len(d.Spec.Tasks) > 0 {
			out = append(out, d)
		}
	}
	return out
}
