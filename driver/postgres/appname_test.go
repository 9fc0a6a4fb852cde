package postgres

import (
	"strings"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

func TestSessionNames(t *testing.T) {
	long := "manual-nightly-maintenance-of-the-orders-cluster-2026-05-01T02:00:00Z-" + strings.Repeat("x", 40)
	for _, tc := range []struct {
		job     string
		task    domain.TaskType
		attempt int
		want    string // "" = only check the invariants
	}{
		{"job-1", domain.TaskMVCCCleanup, 1, "themis:job-1:mvcc_cleanup:a1"},
		{"job-1", domain.TaskMVCCCleanup, 0, "themis:job-1:mvcc_cleanup:a1"},
		{"0f8c5a1e-4b7d-4a53-9c1e-2f6b8d9e0a11", domain.TaskIndexRebuild, 12, ""},
		{long, domain.TaskIndexFragmentationReport, 999999, ""},
		{"job:with:colons", domain.TaskMVCCCleanup, 2, ""},
		{"jöb", domain.TaskMVCCCleanup, 2, ""},
	} {
		name := sessionName(tc.job, tc.task, tc.attempt)
		prefix := sessionPrefix(tc.job, tc.task)
		if tc.want != "" && name != tc.want {
			t.Errorf("sessionName(%q) = %q, want %q", tc.job, name, tc.want)
		}
		if len(name) > maxAppName {
			t.Errorf("%q is %d bytes, more than %d", name, len(name), maxAppName)
		}
		for _, r := range name {
			if r < 0x20 || r > 0x7e {
				t.Errorf("%q has a non-printable-ASCII character", name)
			}
		}
		if n, ok := attemptOf(name, prefix); !ok || n != max(1, tc.attempt) {
			t.Errorf("attemptOf(%q) = %d, %t", name, n, ok)
		}
		if !strings.Contains(name, ":"+string(tc.task)+":a") {
			t.Errorf("%q does not name task %s", name, tc.task)
		}
	}
	// Job ids that differ only past the room kept get different prefixes.
	if sessionPrefix(long+"a", domain.TaskMVCCCleanup) == sessionPrefix(long+"b", domain.TaskMVCCCleanup) {
		t.Error("two long job ids share a prefix")
	}
	// A prefix of one task is not a prefix of another's names.
	if _, ok := attemptOf(sessionName("j", domain.TaskMVCCCleanup, 2), sessionPrefix("j", domain.TaskStatisticsUpdate)); ok {
		t.Error("a statistics_update prefix matched an mvcc_cleanup session")
	}
	if _, ok := attemptOf("themis:j:mvcc_cleanup:a2x", sessionPrefix("j", domain.TaskMVCCCleanup)); ok {
		t.Error("a malformed attempt parsed")
	}
	if sessionName("", domain.TaskMVCCCleanup, 3) != "" {
		t.Error("no job id should give no session name")
	}
	if serverMajor("15.8 (Debian 15.8-1.pgdg120+1)") != 15 || serverMajor("9.6.24") != 9 || serverMajor("17devel") != 17 || serverMajor("") != 0 {
		t.Error("serverMajor")
	}
}
