package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/internal/audit"
)

// Health is the body of /healthz and of a successful /readyz.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

func (h *handler) status(c *gin.Context) {
	st, err := h.svc.Status(c.Request.Context())
	if err != nil {
		abortWithError(c, err)
		return
	}
	if st.Version == "" {
		st.Version = h.opts.Version
	}
	c.JSON(http.StatusOK, st)
}

// healthz answers 200 while the process serves HTTP; it calls nothing.
func (h *handler) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, Health{Status: "ok", Version: h.opts.Version})
}

// readyz answers 200 when the service reaches Temporal, 503 otherwise (any
// error of Ready counts as unavailable).
func (h *handler) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.opts.ReadyTimeout)
	defer cancel()
	if err := h.svc.Ready(ctx); err != nil {
		h.log.WarnContext(c.Request.Context(), "not ready", "request_id", RequestID(c), "error", audit.Sanitize(err.Error()))
		writeProblem(c, Problem{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Detail: "not ready: the orchestrator backend (Temporal) does not answer"})
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, Health{Status: "ready", Version: h.opts.Version})
}
