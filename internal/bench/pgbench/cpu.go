package pgbench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// kthreadd is the parent of every kernel thread.
const kthreadd = 2

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// cpuSample is a reading of CPU time spent so far, in seconds: by the whole
// machine (user, nice, system and steal; not interrupts), by the cluster
// (postmaster, its live children and the children it has reaped), by this
// process with its children (native tools once reaped, the Temporal dev
// server while live) and by kernel threads (writeback of the pages a side
// dirtied, among others: the side's own doing, not another tenant's).
type cpuSample struct {
	machine, cluster, self, kernel float64
	ok                             bool
}

// foreignShare returns the share of the machine's capacity over a wall
// interval of secs that went to other user processes or to other virtual
// machines (steal): not to the cluster, this process tree or kernel threads.
func foreignShare(a, b cpuSample, secs float64, cpus int) (float64, bool) {
	if !a.ok || !b.ok || secs <= 0 || cpus <= 0 {
		return 0, false
	}
	f := (b.machine - a.machine) - (b.cluster - a.cluster) - (b.self - a.self) - (b.kernel - a.kernel)
	return max(0, f) / (secs * float64(cpus)), true
}

// readCPU samples CPU times; ok is false where /proc is not available.
func readCPU(postmaster int) cpuSample {
	var s cpuSample
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s
	}
	// user nice system idle iowait irq softirq steal: interrupts are left
	// out (block and loopback-network softirqs follow the side's own I/O).
	for _, i := range []int{1, 2, 3, 8} {
		v, _ := strconv.ParseFloat(f[i], 64)
		s.machine += v / clockTicks
	}
	self, _, ok := procTimes("self", true)
	if !ok {
		return s
	}
	s.self = self
	if postmaster > 0 {
		pm, _, ok := procTimes(strconv.Itoa(postmaster), true)
		if !ok {
			return s
		}
		s.cluster = pm
	}
	// Live children: the postmaster's backends and workers; ours (the
	// Temporal dev server; native tools are reaped before each sample).
	me := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		t, ppid, ok := procTimes(filepath.Base(d), true)
		switch {
		case !ok:
		case postmaster > 0 && ppid == postmaster:
			s.cluster += t
		case ppid == me:
			s.self += t
		case ppid == kthreadd || filepath.Base(d) == "2":
			s.kernel += t
		}
	}
	s.ok = true
	return s
}

// procTimes returns utime+stime (+cutime+cstime with children) of pid in
// seconds, and its parent pid.
func procTimes(pid string, children bool) (float64, int, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, _ := strconv.Atoi(f[1])
	idx := []int{11, 12}
	if children {
		idx = append(idx, 13, 14)
	}
	var t float64
	for _, k := range idx {
		v, _ := strconv.ParseFloat(f[k], 64)
		t += v / clockTicks
	}
	return t, ppid, true
}

// postmasterPID reads the postmaster's pid from the data directory.
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// QuietPct is the share of the machine's CPU used outside the benchmark
// under which the machine counts as quiet before a measured side.
const QuietPct = 10.0

// waitQuiet waits until the CPU used outside the cluster (postmaster pid
// pm) and this process stays under QuietPct over a 2 s window, for at most
// maxWait. It reports how long it waited and whether it got quiet.
func waitQuiet(ctx context.Context, pm int, cpus int, maxWait time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	const window = 2 * time.Second
	for {
		settle(ctx, pm, 5*time.Second)
		a := readCPU(pm)
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(window):
		}
		settle(ctx, pm, 5*time.Second)
		share, ok := foreignShare(a, readCPU(pm), window.Seconds(), cpus)
		if !ok || 100*share < QuietPct {
			return time.Since(start), ok, nil
		}
		if time.Since(start) >= maxWait {
			return time.Since(start), false, nil
		}
	}
}

// auxTitles are the process titles of the postmaster's long-lived children.
var auxTitles = []string{
	"checkpointer", "background writer", "walwriter", "autovacuum launcher",
	"logical replication launcher", "archiver", "stats collector", "walsender", "walreceiver", "startup",
}

// transientChildren counts the postmaster's children that are not
// long-lived auxiliary processes: backends and parallel workers.
func transientChildren(pm int) int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		_, ppid, ok := procTimes(filepath.Base(d), false)
		if !ok || ppid != pm {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		title := string(b)
		aux := false
		for _, a := range auxTitles {
			if strings.Contains(title, a) {
				aux = true
				break
			}
		}
		if !aux {
			n++
		}
	}
	return n
}

// settle waits (at most timeout) until the postmaster pm has no backends or
// parallel workers left, so that their CPU time is in its reaped-children
// total before a sample: a backend reaped between the two reads of
// readCPU would otherwise count for neither.
func settle(ctx context.Context, pm int, timeout time.Duration) bool {
	if pm <= 0 {
		return false
	}
	deadline := time.Now().Add(timeout)
	for transientChildren(pm) > 0 {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}
