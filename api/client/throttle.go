package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/themis-maintenance/themis/api"
)

// ThrottleRequest pauses a target's maintenance: set exactly one of Until
// and For.
type ThrottleRequest struct {
	Until  time.Time
	For    time.Duration
	Reason string
}

// TargetThrottle reads a target's manual pause (GET
// /targets/{name}/throttle).
func (c *Client) TargetThrottle(ctx context.Context, target string) (api.ThrottleState, error) {
	var out api.ThrottleState
	err := c.do(ctx, http.MethodGet, "/targets/"+url.PathEscape(target)+"/throttle", nil, nil, &out)
	return out, err
}

// SetTargetThrottle pauses a target's maintenance (POST
// /targets/{name}/throttle).
func (c *Client) SetTargetThrottle(ctx context.Context, target string, req ThrottleRequest) (api.ThrottleState, error) {
	body := map[string]string{}
	if !req.Until.IsZero() {
		body["until"] = req.Until.UTC().Format(time.RFC3339)
	}
	if req.For != 0 {
		body["for"] = req.For.String()
	}
	if req.Reason != "" {
		body["reason"] = req.Reason
	}
	var out api.ThrottleState
	err := c.do(ctx, http.MethodPost, "/targets/"+url.PathEscape(target)+"/throttle", nil, body, &out)
	return out, err
}

// ClearTargetThrottle clears a target's manual pause (DELETE
// /targets/{name}/throttle).
func (c *Client) ClearTargetThrottle(ctx context.Context, target string) (api.ThrottleState, error) {
	var out api.ThrottleState
	err := c.do(ctx, http.MethodDelete, "/targets/"+url.PathEscape(target)+"/throttle", nil, nil, &out)
	return out, err
}
