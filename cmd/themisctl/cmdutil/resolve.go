package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/themis-maintenance/themis/api/client"
	"github.com/themis-maintenance/themis/domain"
)

// ResolveSchedule finds the schedule ref names: by id when ref has the
// shape of an id and such a schedule exists, otherwise by exact name
// (e.g. "Daily Maintenance"). An unknown ref is an error that suggests
// schedules whose name matches case-insensitively.
func ResolveSchedule(ctx context.Context, c *client.Client, ref string) (domain.Schedule, error) {
	if domain.ValidID(ref) {
		s, err := c.GetSchedule(ctx, ref)
		if err == nil {
			return s, nil
		}
		if !client.IsNotFound(err) {
			return domain.Schedule{}, err
		}
	}
	list, err := c.ListSchedules(ctx)
	if err != nil {
		return domain.Schedule{}, err
	}
	var similar []string
	for _, s := range list {
		if s.Name == ref {
			return s, nil
		}
		if strings.EqualFold(strings.TrimSpace(s.Name), strings.TrimSpace(ref)) || strings.EqualFold(s.ID, ref) {
			similar = append(similar, fmt.Sprintf("%q (%s)", s.Name, s.ID))
		}
	}
	msg := fmt.Sprintf("no schedule with id or name %q", ref)
	if len(similar) > 0 {
		msg += "; did you mean " + strings.Join(similar, " or ") + "?"
	}
	return domain.Schedule{}, errors.New(msg)
}
