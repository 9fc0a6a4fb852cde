package testsuite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// RecordHistory writes the event history of a finished workflow to
// $THEMIS_RECORD_HISTORIES/<name>.json when that variable is set. The
// workflows package replays the checked-in copies (workflows/testdata) so a
// change that would break running executions fails the tests. Refresh them
// with `make record-histories`.
func (e *Env) RecordHistory(workflowID, name string) {
	dir := os.Getenv("THEMIS_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	e.T.Helper()
	recordHistory(e.T, e, workflowID, filepath.Join(dir, name+".json"))
}

func recordHistory(t testing.TB, e *Env, workflowID, path string) {
	ctx := context.Background()
	iter := e.Client.GetWorkflowHistory(ctx, workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatalf("read history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatalf("encode history: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded history of %s in %s", workflowID, path)
}
