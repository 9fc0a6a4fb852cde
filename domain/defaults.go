package domain

// DefaultSchedule is one of the four schedules created, disabled, at first start.
type DefaultSchedule struct {
	ID   string
	Spec ScheduleSpec
}

// DefaultSchedules returns the four default schedules of SPEC §2 for target,
// disabled, with their fixed ids so that creating them is idempotent.
func DefaultSchedules(target string) []DefaultSchedule {
	mk := func(id, name string, f Frequency, start, end int, halt bool, tasks ...TaskType) DefaultSchedule {
		cron, _ := DeriveCron(f, start)
		return DefaultSchedule{ID: id, Spec: ScheduleSpec{
			Name: name, Description: "Default " + string(f) + " maintenance",
			Target: target, Frequency: f, CronExpression: cron, Timezone: "UTC",
			Tasks: tasks, TaskOptions: map[TaskType]TaskOptions{},
			Enabled: false, EnforceWindow: true, WindowStartHour: start, WindowEndHour: end,
			HaltOnTaskFailure: halt,
		}}
	}
	return []DefaultSchedule{
		mk("daily-maintenance", "Daily Maintenance", FrequencyDaily, 2, 6, false,
			TaskMetricsCollection, TaskFragmentationMonitoring, TaskQuotaCheck),
		mk("weekly-maintenance", "Weekly Maintenance", FrequencyWeekly, 2, 6, false,
			TaskConsistencyCheck, TaskReplicaValidation, TaskPerformanceAnalysis, TaskMVCCCleanup),
		mk("monthly-maintenance", "Monthly Maintenance", FrequencyMonthly, 2, 6, false,
			TaskFullCheckDB, TaskBackupVerification, TaskCapacityTrendAnalysis, TaskIndexFragmentationReport),
		mk("quarterly-maintenance", "Quarterly Maintenance", FrequencyQuarterly, 0, 6, true,
			TaskDisasterRecoveryDrill, TaskBaselineUpdate),
	}
}
