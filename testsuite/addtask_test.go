package testsuite

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/themis-maintenance/themis/api"
	"github.com/themis-maintenance/themis/cmd/themisctl/cmdutil"
	"github.com/themis-maintenance/themis/cmd/themisctl/root"
	"github.com/themis-maintenance/themis/domain"
	"github.com/themis-maintenance/themis/driver"
)

// Adding a task type is one registration and one function per engine: this
// test adds one (with a SQLite implementation) before the environment
// starts, and finds it in GET /task-types, in a job that runs it on the
// real dev server, in the served OpenAPI document and in the CLI's
// completion of task types.
func TestAddTaskType(t *testing.T) {
	const task domain.TaskType = "table_census"
	unregister, err := domain.RegisterTask(domain.TaskDef{
		Type: task, Title: "Table census", Description: "Count the tables of the database",
		Timeout: domain.TimeoutShort,
		Options: map[string]domain.OptionSpec{
			"max_tables": {Kind: domain.OptionInt, Min: 1, Max: 10_000, Default: 50, Help: "tables listed at most"},
		},
	})
	require.NoError(t, err)
	t.Cleanup(unregister)
	unimplement, err := driver.Implement("sqlite", task, func(ctx context.Context, req driver.Request) (driver.Result, error) {
		db, err := sql.Open("sqlite", "file:"+req.Target.DSN+"?mode=ro")
		if err != nil {
			return driver.Result{}, err
		}
		defer db.Close()
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&n); err != nil {
			return driver.Result{}, fmt.Errorf("count tables: %w", err)
		}
		req.Progress(driver.Progress{Pct: 100, Note: "counted"})
		limit := req.Int("max_tables") // the registered default when unset
		return driver.Result{
			Summary: fmt.Sprintf("%d tables (max_tables %d)", n, limit),
			Details: map[string]any{"tables": n, "max_tables": limit},
		}, nil
	})
	require.NoError(t, err)
	t.Cleanup(unimplement)

	e := NewEnv(t, EnvOptions{})
	read, write := e.Token(api.ScopeRead), e.Token(api.ScopeWrite)

	// GET /task-types, with its option and default; the worker's
	// capabilities say SQLite runs it (and both engines run the drill).
	var tl api.TaskTypeList
	require.Equal(t, http.StatusOK, e.call("GET", "/task-types", read, nil, &tl))
	i := slices.IndexFunc(tl.TaskTypes, func(ti api.TaskTypeInfo) bool { return ti.Name == string(task) })
	require.GreaterOrEqual(t, i, 0, "GET /task-types lacks %s", task)
	got := tl.TaskTypes[i]
	require.Equal(t, "Table census", got.Title)
	require.Equal(t, "short", got.Timeout)
	require.Equal(t, float64(50), got.Options["max_tables"].Default)
	caps := e.Deps.Registry.Capabilities()
	require.Equal(t, []string{"sqlite"}, caps[task])
	require.Equal(t, []string{"postgres", "sqlite"}, caps[domain.TaskDisasterRecoveryDrill])
	drivers := map[string][]string{}
	for _, ti := range replica(t, e, "default").TaskTypes() {
		drivers[ti.Name] = ti.Drivers
	}
	require.Equal(t, []string{"sqlite"}, drivers[string(task)])

	// A schedule with the task, through the API (the request validator
	// checks the body against the served document), forced to run.
	var sc domain.Schedule
	body := map[string]any{"name": fmt.Sprintf("Census %d", time.Now().UnixNano()), "target": "demo", "frequency": "weekly",
		"tasks": []string{string(task), string(domain.TaskQuotaCheck)}}
	require.Equal(t, http.StatusCreated, e.call("POST", "/schedules", write, body, &sc))
	t.Cleanup(func() { _ = e.Service.DeleteSchedule(context.Background(), sc.ID, "test") })
	require.Equal(t, http.StatusBadRequest, e.call("PATCH", "/schedules/"+sc.ID, write,
		map[string]any{"task_options": map[string]any{string(task): map[string]any{"max_tables": 0}}}, nil), "bounds come from the registration")
	job, err := e.Service.RunSchedule(context.Background(), sc.ID, true, "test")
	require.NoError(t, err)
	job = e.WaitJob(job.ID, time.Minute, Terminal)
	require.Equal(t, domain.StateSucceeded, job.State, "error: %s", job.ErrorMessage)
	require.Equal(t, task, job.Tasks[0].TaskType)
	require.Equal(t, domain.StateSucceeded, job.Tasks[0].State, job.Tasks[0].ErrorMessage)
	require.Regexp(t, `^\d+ tables \(max_tables 50\)$`, job.Tasks[0].ResultSummary)

	// The served OpenAPI document.
	resp, err := http.Get(e.API.URL + api.OpenAPIYAMLPath)
	require.NoError(t, err)
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(doc), "        - "+string(task)+"\n")
	require.Contains(t, string(doc), "        "+string(task)+":\n          type: object\n          additionalProperties: false\n          properties:\n            max_tables:\n")

	// The CLI's completion of --tasks asks the API.
	ios, _, out, _ := cmdutil.TestStreams(false)
	f := cmdutil.NewFactory(ios, "test")
	f.Getenv = func(string) string { return "" }
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs([]string{"__complete", "--api-url", e.API.URL, "--token", read, "schedule", "create", "--tasks", "quota_check,table_"})
	require.Equal(t, 0, cmdutil.Execute(context.Background(), cmd, ios))
	require.Equal(t, "quota_check,"+string(task), strings.Split(out.String(), "\n")[0])
}
