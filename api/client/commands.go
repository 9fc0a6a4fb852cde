package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/themis-maintenance/themis/api"
)

// CommandQuery selects command-log rows for ListCommands; zero fields match
// everything.
type CommandQuery struct {
	Target    string
	Object    string
	JobID     string
	Since     time.Time
	Limit     int
	PageToken string
}

// ListCommands returns one page of the command log (GET /commands), newest
// first.
func (c *Client) ListCommands(ctx context.Context, q CommandQuery) (api.CommandPage, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("target", q.Target)
	set("object", q.Object)
	set("job_id", q.JobID)
	set("page_token", q.PageToken)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out api.CommandPage
	err := c.do(ctx, http.MethodGet, "/commands", v, nil, &out)
	return out, err
}
