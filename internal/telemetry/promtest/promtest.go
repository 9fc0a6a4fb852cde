// Package promtest reads the Prometheus text exposition a /metrics endpoint
// serves, for tests that scrape one.
package promtest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Sum adds up the samples of metric name in body whose label set contains
// every one of labels (each written as in the exposition, `key="value"`).
// A metric with no matching sample sums to 0.
func Sum(body, name string, labels ...string) (float64, error) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return 0, fmt.Errorf("sample %q: %w", m[0], err)
		}
		sum += v
	}
	return sum, nil
}
