package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/themis-maintenance/themis/domain"
)

// DrillTrend returns a target's RTO/RPO trend over its newest limit
// finished drills (0: the server's default), oldest first.
func (c *Client) DrillTrend(ctx context.Context, target string, limit int) (domain.DrillTrend, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out domain.DrillTrend
	err := c.do(ctx, http.MethodGet, "/targets/"+url.PathEscape(target)+"/drills", q, nil, &out)
	return out, err
}
