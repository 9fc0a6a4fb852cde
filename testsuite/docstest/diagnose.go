package docstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ActiveJobs describes the jobs the stack has not finished, with their
// tasks' states and progress notes: what a doc command waiting on a job
// was waiting for. It is printed first when a file fails, so that a CI log
// cut in its middle still shows it.
func (s *Stack) ActiveJobs() string {
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, into any) error {
		req, _ := http.NewRequest(http.MethodGet, s.APIURL+"/api/v1/maintenance"+path, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return json.Unmarshal(body, into)
	}
	var page struct {
		Jobs []struct {
			ID string `json:"id"`
		} `json:"jobs"`
	}
	if err := get("/jobs?active_only=true&limit=20", &page); err != nil {
		return "active jobs: " + err.Error()
	}
	if len(page.Jobs) == 0 {
		return "active jobs: none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "active jobs (%d):\n", len(page.Jobs))
	for _, j := range page.Jobs {
		var job struct {
			ID, State, ResultSummary string
			Tasks                    []struct {
				TaskType      string         `json:"task_type"`
				State         string         `json:"state"`
				Attempt       int            `json:"attempt"`
				ProgressPct   float64        `json:"progress_pct"`
				ResultSummary string         `json:"result_summary"`
				ErrorMessage  string         `json:"error_message"`
				Details       map[string]any `json:"details"`
			} `json:"tasks"`
		}
		if err := get("/jobs/"+j.ID, &job); err != nil {
			fmt.Fprintf(&b, "  %s: %v\n", j.ID, err)
			continue
		}
		fmt.Fprintf(&b, "  %s %s\n", j.ID, job.State)
		for _, t := range job.Tasks {
			fmt.Fprintf(&b, "    %s %s attempt %d %.0f%% %q %q %v\n", t.TaskType, t.State, t.Attempt, t.ProgressPct, t.ResultSummary, t.ErrorMessage, t.Details["progress_note"])
		}
	}
	return b.String()
}

// Problems returns the stack's warning and error lines (at most the last
// n), without the request log that makes up most of it.
func (s *Stack) Problems(n int) string {
	var out []string
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}
