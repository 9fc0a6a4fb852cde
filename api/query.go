package api

import (
	"slices"

	"github.com/gin-gonic/gin"
)

// queryParam is one query parameter of a list request.
type queryParam struct{ key, value string }

// queryParams returns the request's query parameters in name order, each
// given once: a repeated parameter is refused (400) so that a typo or a
// doubled filter never silently changes a listing.
func queryParams(c *gin.Context) ([]queryParam, error) {
	q := c.Request.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]queryParam, 0, len(keys))
	for _, k := range keys {
		if len(q[k]) > 1 {
			return nil, badRequest(CodeInvalidParameter, clip(k, 100), "query parameter %s is given more than once", clip(k, 100))
		}
		out = append(out, queryParam{key: k, value: q[k][0]})
	}
	return out, nil
}
