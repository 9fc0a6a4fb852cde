package api

import (
	"maps"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
)

// TaskTypeList is the body of GET /task-types.
type TaskTypeList struct {
	TaskTypes []TaskTypeInfo `json:"task_types"`
	Count     int            `json:"count"`
}

// TargetList is the body of GET /targets.
type TargetList struct {
	Targets []TargetInfo `json:"targets"`
	Count   int          `json:"count"`
}

func (h *handler) infoService(c *gin.Context) (InfoService, bool) {
	if h.info == nil {
		abortWithError(c, errNotConfigured("health and catalogue are not available on this server (no info service configured)"))
		return nil, false
	}
	return h.info, true
}

// health answers the cached health report: InfoService.Health must not
// probe anything, so this stays fast whatever the modules' state.
func (h *handler) health(c *gin.Context) {
	is, ok := h.infoService(c)
	if !ok {
		return
	}
	rep, err := is.Health(c.Request.Context())
	if err != nil {
		abortWithError(c, err)
		return
	}
	mods := make([]HealthSignal, len(rep.Modules))
	copy(mods, rep.Modules)
	rep.Modules = mods
	if rep.OverallStatus == "" {
		rep.OverallStatus = HealthDegraded
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, rep)
}

func (h *handler) taskTypes(c *gin.Context) {
	is, ok := h.infoService(c)
	if !ok {
		return
	}
	list := is.TaskTypes()
	out := make([]TaskTypeInfo, len(list))
	for i, t := range list {
		// What a task type is comes from its registration; the service
		// contributes the drivers that run it.
		if def, ok := domain.Info(domain.TaskType(t.Name)); ok {
			out[i] = DescribeTaskType(def, t.Drivers)
			continue
		}
		if t.Drivers == nil {
			t.Drivers = []string{}
		} else {
			t.Drivers = slices.Clone(t.Drivers)
		}
		if t.Options == nil {
			t.Options = map[string]OptionInfo{}
		} else {
			t.Options = maps.Clone(t.Options)
		}
		out[i] = t
	}
	c.JSON(http.StatusOK, TaskTypeList{TaskTypes: out, Count: len(out)})
}

func (h *handler) targets(c *gin.Context) {
	is, ok := h.infoService(c)
	if !ok {
		return
	}
	list := slices.Clone(is.Targets())
	if list == nil {
		list = []TargetInfo{}
	}
	c.JSON(http.StatusOK, TargetList{Targets: list, Count: len(list)})
}
