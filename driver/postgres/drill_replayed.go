package postgres

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// What a restored scratch instance replayed, read from its server log: the
// WAL range and bytes a drill reports.

var (
	restoredSegRE = regexp.MustCompile(`restored log file "([0-9A-F]{24})" from archive`)
	redoStartsRE  = regexp.MustCompile(`redo starts at ([0-9A-F]+/[0-9A-F]+)`)
	redoDoneRE    = regexp.MustCompile(`redo done at ([0-9A-F]+/[0-9A-F]+)`)
	lastXactRE    = regexp.MustCompile(`last completed transaction was at log time ([^\n]+)`)
	stoppingRE    = regexp.MustCompile(`recovery stopping (before|after) [^\n]+`)
	startTLIRE    = regexp.MustCompile(`START TIMELINE: (\d+)`)
)

// recoveryLog is what a recovery logged.
type recoveryLog struct {
	// Restored lists the segments restored from the archive, in order.
	Restored []string
	// RedoStart and RedoDone are the first and last record replayed
	// (0 when not logged).
	RedoStart, RedoDone uint64
	// LastXact is the commit time of the last transaction replayed.
	LastXact string
	// Stopped is the server's "recovery stopping ..." line, when a
	// recovery target ended it.
	Stopped string
}

// parseRecoveryLog reads a server log that may hold several attempts: the
// first redo start, the last redo end and every segment restored.
func parseRecoveryLog(log string) recoveryLog {
	var rl recoveryLog
	for _, m := range restoredSegRE.FindAllStringSubmatch(log, -1) {
		rl.Restored = append(rl.Restored, m[1])
	}
	if m := redoStartsRE.FindStringSubmatch(log); m != nil {
		rl.RedoStart, _ = parseLSN(m[1])
	}
	if all := redoDoneRE.FindAllStringSubmatch(log, -1); len(all) > 0 {
		rl.RedoDone, _ = parseLSN(all[len(all)-1][1])
	}
	if all := lastXactRE.FindAllStringSubmatch(log, -1); len(all) > 0 {
		rl.LastXact = all[len(all)-1][1]
	}
	if all := stoppingRE.FindAllString(log, -1); len(all) > 0 {
		rl.Stopped = all[len(all)-1]
	}
	return rl
}

// walRange is the first and last segment replayed ("first-last", or one
// name) and the WAL bytes replayed (redo start to redo end). Segments
// restored from the archive name themselves (timeline included); a
// replay from pg_wal only is named from the redo LSNs on the timeline of
// the backup's label in data.
func (rl recoveryLog) walRange(data string, segSize uint64) (string, int64) {
	var bytes int64
	if rl.RedoDone > rl.RedoStart && rl.RedoStart > 0 {
		bytes = int64(rl.RedoDone - rl.RedoStart)
	}
	tli := uint32(0)
	for _, f := range []string{"backup_label.old", "backup_label"} {
		if b, err := os.ReadFile(filepath.Join(data, f)); err == nil {
			if m := startTLIRE.FindSubmatch(b); m != nil {
				n, _ := strconv.ParseUint(string(m[1]), 10, 32)
				tli = uint32(n)
				break
			}
		}
	}
	if segSize == 0 {
		return "", bytes
	}
	first, last := "", ""
	if rl.RedoStart > 0 && tli > 0 {
		first = segName(walPos{TLI: tli, Segno: rl.RedoStart / segSize}, segSize)
	}
	if rl.RedoDone > 0 && tli > 0 {
		last = segName(walPos{TLI: tli, Segno: rl.RedoDone / segSize}, segSize)
	}
	// Restored segments carry their timeline: the last one holding the
	// redo end names the end (a later one may have been read ahead).
	if len(rl.Restored) > 0 {
		if first == "" {
			first = rl.Restored[0]
		}
		end := rl.Restored[len(rl.Restored)-1]
		if rl.RedoDone > 0 {
			for _, name := range rl.Restored {
				if p, ok := parseSegName(name, segSize); ok && p.Segno == rl.RedoDone/segSize {
					end = name
				}
			}
		}
		last = end
	}
	switch {
	case first == "" && last == "":
		return "", bytes
	case first == "" || first == last:
		return last, bytes
	case last == "":
		return first, bytes
	}
	return first + "-" + last, bytes
}
