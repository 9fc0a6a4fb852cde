package workflows

import (
	"slices"
	"testing"
	"time"

	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// The timeouts and retry policy of the built-in task types are what they
// were before timeouts came from the task registry (recorded histories
// replay against them).
func TestTaskTimeoutsFromTheRegistry(t *testing.T) {
	long := []domain.TaskType{domain.TaskBackupVerification, domain.TaskFullCheckDB, domain.TaskMVCCCleanup,
		domain.TaskIndexRebuild, domain.TaskIndexReorganize, domain.TaskStorageCompaction}
	for _, tt := range domain.AllTaskTypes() {
		want := 2 * time.Hour
		if slices.Contains(long, tt) {
			want = 12 * time.Hour
		}
		o := taskActivityOptions(MaintenanceInput{}, tt, 0, 1)
		if o.StartToCloseTimeout != want {
			t.Errorf("%s: timeout %s, want %s", tt, o.StartToCloseTimeout, want)
		}
		if got := o.RetryPolicy.NonRetryableErrorTypes; !slices.Equal(got, driver.NonRetryableKinds()) || len(got) != 5 {
			t.Errorf("%s: non-retryable %v", tt, got)
		}
	}
	unregister, err := domain.RegisterTask(domain.TaskDef{Type: "long_probe", Title: "Long probe", Timeout: domain.TimeoutLong})
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	if got := taskTimeout("long_probe"); got != 12*time.Hour {
		t.Errorf("registered long task: %s", got)
	}
}
