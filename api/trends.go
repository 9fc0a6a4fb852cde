package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
)

// drillTrend serves GET /targets/{name}/drills: the target's finished
// drills, oldest first, with RTO/RPO against the objectives, from the
// history store.
func (h *handler) drillTrend(c *gin.Context) {
	limit, err := parseDrillLimit(c)
	if err != nil {
		abortWithError(c, err)
		return
	}
	ds, ok := h.drillService(c)
	if !ok {
		return
	}
	name := c.Param("name")
	if !h.svc.TargetKnown(name) {
		abortWithError(c, fmt.Errorf("%w: target %q is not configured", domain.ErrNotFound, clip(name, 100)))
		return
	}
	trend, err := ds.DrillTrend(c.Request.Context(), name, limit)
	if err != nil {
		abortWithError(c, err)
		return
	}
	c.JSON(http.StatusOK, trend)
}
