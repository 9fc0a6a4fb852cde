package activities

import "context"

// Host names the worker host an activity runs on and the task queue only
// that host's workers poll. Steps that touch a scratch instance (the drill's
// verify and clean-up) are scheduled on the queue of the host whose restore
// created it.
type Host struct {
	ID    string `json:"host_id"`
	Queue string `json:"host_queue"`
}

type hostKey struct{}

// WithHost returns ctx carrying h; the worker puts it in the background
// context of its activities.
func WithHost(ctx context.Context, h Host) context.Context {
	return context.WithValue(ctx, hostKey{}, h)
}

// HostOf returns the host an activity runs on (zero when the worker has no
// host queue).
func HostOf(ctx context.Context) Host {
	h, _ := ctx.Value(hostKey{}).(Host)
	return h
}
