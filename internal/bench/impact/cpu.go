package impact

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's cumulative CPU time from /proc/stat's first
// line, in clock ticks: busy (user, nice, system, irq, softirq, steal)
// and the total with idle and iowait.
type cpuTimes struct {
	busy, total uint64
	ok          bool
}

// readCPUTimes reads /proc/stat; ok is false where it cannot (not Linux).
func readCPUTimes() cpuTimes {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return cpuTimes{}
	}
	t, err := parseCPULine(line)
	if err != nil {
		return cpuTimes{}
	}
	return t
}

// parseCPULine parses "cpu  user nice system idle iowait irq softirq steal …".
func parseCPULine(line string) (cpuTimes, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, line, err)
		}
		v[i] = n
	}
	busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return cpuTimes{busy: busy, total: busy + v[3] + v[4], ok: true}, nil
}

// cpusBusy is how many of the machine's cpus were busy on average between
// two readings; 0 when either is missing (something always runs in a
// window: pgbench).
func cpusBusy(from, to cpuTimes, cpus int) float64 {
	if !from.ok || !to.ok || to.total <= from.total {
		return 0
	}
	return float64(to.busy-from.busy) / float64(to.total-from.total) * float64(cpus)
}
