package orchestration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Frontend operations that read visibility (their cost grows with the
// workflows and schedules matched), and those that read one item.
var (
	visibilityOps = []string{"ListWorkflowExecutions", "CountWorkflowExecutions", "ScanWorkflowExecutions",
		"ListSchedules", "ListOpenWorkflowExecutions", "ListClosedWorkflowExecutions"}
	perItemOps = []string{"DescribeSchedule", "DescribeWorkflowExecution", "QueryWorkflow",
		"GetWorkflowExecutionHistory", "PollWorkflowExecutionUpdate"}
)

// frontendCounts are the dev server's frontend request counters by
// operation (service_requests{service_name="frontend"}), namespace default.
type frontendCounts map[string]float64

func (c frontendCounts) sum(ops []string) float64 {
	var t float64
	for _, op := range ops {
		t += c[op]
	}
	return t
}

// minus is c − before, operation by operation.
func (c frontendCounts) minus(before frontendCounts) frontendCounts {
	out := frontendCounts{}
	for k, v := range c {
		out[k] = v - before[k]
	}
	return out
}

// scrapeFrontend reads the frontend request counters from the dev
// server's Prometheus endpoint.
func scrapeFrontend(ctx context.Context, url string) (frontendCounts, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return parseFrontendCounts(resp.Body)
}

// parseFrontendCounts reads the service_requests samples of the frontend
// in namespace "default" from Prometheus text exposition.
func parseFrontendCounts(r io.Reader) (frontendCounts, error) {
	out := frontendCounts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "service_requests{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		l := parseLabels(labels)
		if l["service_name"] != "frontend" || l["namespace"] != namespace || l["operation"] == "" {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		out[l["operation"]] += v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no service_requests{service_name=\"frontend\",namespace=%q} samples", namespace)
	}
	return out, nil
}

// parseLabels reads `k="v",k2="v2"` (values without escaped quotes, as
// the server's labels are).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, `="`)
		if !ok {
			break
		}
		v, rest, ok := strings.Cut(rest, `"`)
		if !ok {
			break
		}
		out[strings.TrimPrefix(k, ",")] = v
		s = strings.TrimPrefix(rest, ",")
	}
	return out
}
