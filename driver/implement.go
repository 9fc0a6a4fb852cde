package driver

import (
	"context"
	"fmt"
	"sync"

	"github.com/themis-maintenance/themis/domain"
)

// TaskFunc is an implementation of one task type on one engine, added from
// outside the engine's package with Implement. It follows the contract of
// Driver.Run: it reads req.Target (DSN, directories), reads options with
// req.Option / req.Int and friends, reports progress through req.Progress,
// returns a *PermanentError for what a retry cannot fix and ctx.Err() when
// cancelled.
type TaskFunc func(ctx context.Context, req Request) (Result, error)

// implementations holds what Implement added: engine -> task -> function.
var implementations = struct {
	sync.RWMutex
	m map[string]map[domain.TaskType]TaskFunc
}{m: map[string]map[domain.TaskType]TaskFunc{}}

// Implement adds fn as engine's implementation of task, a task type
// registered with domain.RegisterTask. Call it before the worker starts
// (from an init function, or a test before it builds its environment): the
// worker registers one activity per task type at start. An engine's own
// implementation of the same task type, if any, is replaced for as long as
// the registration lasts. unregister removes it again (idempotent).
func Implement(engine string, task domain.TaskType, fn TaskFunc) (unregister func(), err error) {
	if engine == "" || fn == nil {
		return nil, fmt.Errorf("implement %s: an engine name and a function are required", task)
	}
	if !task.Valid() {
		return nil, fmt.Errorf("implement %s on %s: the task type is not registered (domain.RegisterTask)", task, engine)
	}
	implementations.Lock()
	defer implementations.Unlock()
	if _, dup := implementations.m[engine][task]; dup {
		return nil, fmt.Errorf("implement %s on %s: already implemented", task, engine)
	}
	if implementations.m[engine] == nil {
		implementations.m[engine] = map[domain.TaskType]TaskFunc{}
	}
	implementations.m[engine][task] = fn
	var once sync.Once
	return func() {
		once.Do(func() {
			implementations.Lock()
			defer implementations.Unlock()
			delete(implementations.m[engine], task)
		})
	}, nil
}

// MustImplement is Implement for init functions; an error panics.
func MustImplement(engine string, task domain.TaskType, fn TaskFunc) {
	if _, err := Implement(engine, task, fn); err != nil {
		panic("driver: " + err.Error())
	}
}

// implementation returns what Implement added for engine and task.
func implementation(engine string, task domain.TaskType) (TaskFunc, bool) {
	implementations.RLock()
	defer implementations.RUnlock()
	fn, ok := implementations.m[engine][task]
	return fn, ok
}

// Supports reports whether d can run task: an implementation added with
// Implement for d's engine, the engine's own task table (d.Supports), or,
// for disaster_recovery_drill, d implementing Driller (the drill is a
// workflow of its own, driven through that interface). Capabilities and the
// task activities ask this, never d.Supports alone.
func Supports(d Driver, task domain.TaskType) bool {
	if !task.Valid() {
		return false
	}
	if _, ok := implementation(d.Name(), task); ok {
		return true
	}
	if task == domain.TaskDisasterRecoveryDrill {
		_, ok := d.(Driller)
		return ok
	}
	return d.Supports(task)
}

// Run runs req on d: through the implementation added with Implement for
// d's engine when there is one, through d.Run otherwise.
func Run(ctx context.Context, d Driver, req Request) (Result, error) {
	if fn, ok := implementation(d.Name(), req.Task); ok {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		res, err := fn(ctx, req)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return Result{}, ctxErr
			}
			return Result{}, err
		}
		if res.Details == nil {
			res.Details = map[string]any{}
		}
		return res, nil
	}
	return d.Run(ctx, req)
}
