package api

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
)

// maxCachedBodies bounds the encoded list answers kept for one revision
// (one per distinct request: route and query).
const maxCachedBodies = 256

// listCache keeps the encoded bodies of list answers built from one
// revision of the service's read model, so a burst of equal requests is
// encoded once. A new revision drops them all. It is a cache of this
// process: nothing cluster-wide depends on it.
type listCache struct {
	mu     sync.Mutex
	rev    uint64
	bodies map[string][]byte
}

// respond writes v as the 200 JSON answer of c, reusing the body encoded
// for the same request and revision (rev 0: not cached).
func (lc *listCache) respond(c *gin.Context, rev uint64, v any) {
	key := c.FullPath() + "?" + c.Request.URL.RawQuery
	if rev != 0 {
		lc.mu.Lock()
		body, ok := lc.bodies[key]
		if lc.rev != rev {
			ok = false
		}
		lc.mu.Unlock()
		if ok {
			c.Data(http.StatusOK, "application/json; charset=utf-8", body)
			return
		}
	}
	body, err := json.Marshal(v)
	if err != nil {
		abortWithError(c, err)
		return
	}
	if rev != 0 {
		lc.mu.Lock()
		if lc.rev != rev || lc.bodies == nil || len(lc.bodies) >= maxCachedBodies {
			lc.rev, lc.bodies = rev, map[string][]byte{}
		}
		lc.bodies[key] = body
		lc.mu.Unlock()
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}
