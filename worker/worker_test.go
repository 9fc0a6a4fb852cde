package worker

import (
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/themis-maintenance/themis/activities"
)

// New registers everything once on the shared queue and the host
// activities on the host queue (a duplicate registration panics).
func TestNewPollsSharedAndHostQueues(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := New(c, "themis", &activities.Activities{}, Options{HostID: "db-1"})
	if w.Host.ID != "db-1" || w.Host.Queue != "themis@db-1" || w.host == nil {
		t.Fatalf("host queue not set up: %+v", w.Host)
	}
	if w := New(c, "themis", &activities.Activities{}, Options{HostID: "-"}); w.host != nil || w.Host.Queue != "" {
		t.Fatalf(`host id "-" polls no host queue: %+v`, w.Host)
	}
}

// A workflows-only worker (a grouped worker's poller of the base queue)
// runs no activity and polls no host queue.
func TestNewWorkflowsOnly(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := New(c, "themis", &activities.Activities{}, Options{HostID: "db-1", WorkflowsOnly: true})
	if w.host != nil || w.Host.Queue != "" {
		t.Fatalf("a workflows-only worker polls a host queue: %+v", w.Host)
	}
}
