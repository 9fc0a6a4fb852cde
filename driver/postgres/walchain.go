package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// WAL-chain check of backup_verification (docs/TARGETS.md, "WAL archive"):
// from the start segment of the latest verified base backup to the
// server's current segment, every segment a restore would replay must be
// in the target's WAL archive directory, on the timeline recovery would
// read it from (.history files followed, as recovery_target_timeline =
// latest does).

// WAL-chain statuses, as WAL-G's wal-verify names them.
const (
	walChainOK      = "OK"
	walChainWarning = "WARNING"
	walChainFailure = "FAILURE"
)

// walArchiveWait bounds how long the check waits for the archiver to
// catch up with segments completed just before it (the backup's own end
// segment among them) before it reports them as not archived yet.
const walArchiveWait = 20 * time.Second

// walPos is a segment on a timeline.
type walPos struct {
	TLI   uint32
	Segno uint64
}

// timelineSpan is a timeline and the LSN it begins at.
type timelineSpan struct {
	TLI   uint32
	Begin uint64
}

// walChainReport is the check's result, as the task details show it.
type walChainReport struct {
	Status        string   `json:"status"`
	Reason        string   `json:"reason,omitempty"`
	ArchiveDir    string   `json:"archive_dir"`
	BaseBackup    string   `json:"base_backup"`
	StartSegment  string   `json:"start_segment"`
	EndSegment    string   `json:"end_segment,omitempty"`
	Timelines     []uint32 `json:"timelines"`
	Needed        int      `json:"segments_needed"`
	Present       int      `json:"segments_present"`
	MissingRanges []string `json:"missing_ranges,omitempty"`
	Pending       []string `json:"not_archived_yet,omitempty"`
}

// summary is the report in one line.
func (w walChainReport) summary() string {
	s := fmt.Sprintf("WAL chain %s: %d/%d segments from %s archived", w.Status, w.Present, w.Needed, w.StartSegment)
	if len(w.MissingRanges) > 0 {
		s += "; missing " + strings.Join(w.MissingRanges, ", ")
	}
	if len(w.Pending) > 0 {
		s += "; not archived yet " + strings.Join(w.Pending, ", ")
	}
	if w.Reason != "" {
		s += " (" + w.Reason + ")"
	}
	return s
}

// segName is the file name of segment segno on timeline tli.
func segName(p walPos, segSize uint64) string {
	per := uint64(0x100000000) / segSize
	return fmt.Sprintf("%08X%08X%08X", p.TLI, p.Segno/per, p.Segno%per)
}

var segNameRE = regexp.MustCompile(`^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$`)

// parseSegName parses a segment file name.
func parseSegName(name string, segSize uint64) (walPos, bool) {
	m := segNameRE.FindStringSubmatch(name)
	if m == nil {
		return walPos{}, false
	}
	tli, _ := strconv.ParseUint(m[1], 16, 32)
	log, _ := strconv.ParseUint(m[2], 16, 32)
	seg, _ := strconv.ParseUint(m[3], 16, 32)
	per := uint64(0x100000000) / segSize
	if seg >= per {
		return walPos{}, false
	}
	return walPos{TLI: uint32(tli), Segno: log*per + seg}, true
}

// parseLSN parses "X/Y".
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	return h<<32 | l, nil
}

// parseHistory turns timeline tli's history file into the timelines from
// the first to tli, each with the LSN it begins at.
func parseHistory(tli uint32, b []byte) ([]timelineSpan, error) {
	var out []timelineSpan
	begin := uint64(0)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("timeline %d history: bad line %q", tli, line)
		}
		parent, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("timeline %d history: bad line %q", tli, line)
		}
		sw, err := parseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline %d history: %w", tli, err)
		}
		out = append(out, timelineSpan{TLI: uint32(parent), Begin: begin})
		begin = sw
	}
	return append(out, timelineSpan{TLI: tli, Begin: begin}), nil
}

// neededSegments lists the segments recovery reads from start (on the
// backup's timeline) up to, not including, segment end: each from the
// newest timeline that has begun by it. It fails when the backup's
// timeline is not an ancestor of the current one at the backup's start.
func neededSegments(start walPos, end uint64, history []timelineSpan, segSize uint64) ([]walPos, error) {
	startIdx := -1
	for i, tl := range history {
		if tl.TLI == start.TLI {
			startIdx = i
		}
	}
	if startIdx < 0 {
		return nil, fmt.Errorf("the base backup's timeline %d is not in the history of the current timeline %d", start.TLI, history[len(history)-1].TLI)
	}
	if startIdx+1 < len(history) && start.Segno > history[startIdx+1].Begin/segSize {
		return nil, fmt.Errorf("the base backup started on timeline %d after the current timeline branched off it", start.TLI)
	}
	var out []walPos
	for s := start.Segno; s < end; s++ {
		tli := start.TLI
		for _, tl := range history[startIdx:] {
			if tl.Begin/segSize <= s {
				tli = tl.TLI
			}
		}
		out = append(out, walPos{TLI: tli, Segno: s})
	}
	return out, nil
}

// missingRanges groups missing segments into "first–last" ranges of
// consecutive segments on one timeline.
func missingRanges(missing []walPos, segSize uint64) []string {
	var out []string
	for i := 0; i < len(missing); {
		j := i
		for j+1 < len(missing) && missing[j+1].TLI == missing[i].TLI && missing[j+1].Segno == missing[j].Segno+1 {
			j++
		}
		if i == j {
			out = append(out, segName(missing[i], segSize))
		} else {
			out = append(out, segName(missing[i], segSize)+"-"+segName(missing[j], segSize))
		}
		i = j + 1
	}
	return out
}

// archivedSegments lists the complete segments in dir (compressed copies
// count; .partial files do not).
func archivedSegments(dir string, segSize uint64) (map[walPos]bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[walPos]bool{}
	for _, e := range entries {
		name := e.Name()
		for _, ext := range []string{".gz", ".zst", ".lz4", ".bz2", ".br", ".xz"} {
			name = strings.TrimSuffix(name, ext)
		}
		if p, ok := parseSegName(name, segSize); ok {
			out[p] = true
		}
	}
	return out, nil
}

// backupStart reads the start segment of the base backup in dataDir from
// its backup_label.
func backupStart(dataDir string, segSize uint64) (walPos, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "backup_label"))
	if err != nil {
		return walPos{}, err
	}
	m := regexp.MustCompile(`START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)`).FindSubmatch(b)
	if m == nil {
		return walPos{}, fmt.Errorf("%s/backup_label names no start segment", dataDir)
	}
	p, ok := parseSegName(string(m[1]), segSize)
	if !ok {
		return walPos{}, fmt.Errorf("%s/backup_label: bad segment name %s", dataDir, m[1])
	}
	return p, nil
}

// latestBaseBackup returns the data directory of the newest verified
// pg_basebackup backup under root, or "".
func latestBaseBackup(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		dir := filepath.Join(root, n)
		if m, err := readMeta(dir); err == nil && m.State == backupVerified && m.Method == methodBasebackup {
			data := filepath.Join(dir, basebackupSubdir)
			if _, err := os.Stat(filepath.Join(data, "backup_label")); err == nil {
				return data
			}
		}
	}
	return ""
}

// walServerState is what the check reads from the server.
type walServerState struct {
	LSN             uint64
	TLI             uint32
	SegSize         uint64
	ArchiveMode     string
	ArchiveTimeout  time.Duration
	LastArchivedAt  time.Time
	LastFailedAt    time.Time
	LastFailedWAL   string
	LastArchivedWAL string
}

func (r *run) walServerState(ctx context.Context) (walServerState, error) {
	var st walServerState
	var lsn, walfile string
	var tli int64
	var segSize, timeoutS int64
	var archivedAt, failedAt *time.Time
	var archivedWAL, failedWAL *string
	err := r.pool.QueryRow(ctx, `
		SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
		       CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_walfile_name(pg_current_wal_lsn()) END,
		       (SELECT timeline_id FROM pg_control_checkpoint())::bigint,
		       (SELECT bytes_per_wal_segment FROM pg_control_init())::bigint,
		       current_setting('archive_mode'),
		       (SELECT setting::bigint FROM pg_settings WHERE name = 'archive_timeout'),
		       a.last_archived_time, a.last_failed_time, a.last_archived_wal, a.last_failed_wal
		FROM pg_stat_archiver a`).Scan(&lsn, &walfile, &tli, &segSize, &st.ArchiveMode, &timeoutS,
		&archivedAt, &failedAt, &archivedWAL, &failedWAL)
	if err != nil {
		return st, classify(ctx, err, "read the WAL position and archiver state")
	}
	if st.LSN, err = parseLSN(lsn); err != nil {
		return st, err
	}
	st.SegSize, st.TLI = uint64(segSize), uint32(tli)
	if p, ok := parseSegName(walfile, st.SegSize); ok {
		st.TLI = p.TLI // the control file's checkpoint may predate a promotion
	}
	st.ArchiveTimeout = time.Duration(timeoutS) * time.Second
	if archivedAt != nil {
		st.LastArchivedAt = *archivedAt
	}
	if failedAt != nil {
		st.LastFailedAt = *failedAt
	}
	if archivedWAL != nil {
		st.LastArchivedWAL = *archivedWAL
	}
	if failedWAL != nil {
		st.LastFailedWAL = *failedWAL
	}
	return st, nil
}

// checkWALChain checks the archive from the start of the base backup in
// dataDir to the server's current segment. A missing segment followed by
// an archived one is a gap (FAILURE). Missing segments at the end are
// waited for up to walArchiveWait; still missing, they are WARNING while
// the archiver is working (it archived within archive_timeout, default a
// minute, and has not failed since), FAILURE otherwise.
func (r *run) checkWALChain(ctx context.Context, archiveDir, dataDir string) (walChainReport, error) {
	rep := walChainReport{ArchiveDir: archiveDir, BaseBackup: filepath.Dir(dataDir)}
	fail := func(reason string) (walChainReport, error) {
		rep.Status, rep.Reason = walChainFailure, reason
		return rep, nil
	}
	deadline := time.Now().Add(walArchiveWait)
	for {
		st, err := r.walServerState(ctx)
		if err != nil {
			return rep, err
		}
		start, err := backupStart(dataDir, st.SegSize)
		if err != nil {
			return rep, fmt.Errorf("base backup start: %w", err)
		}
		rep.StartSegment = segName(start, st.SegSize)
		history := []timelineSpan{{TLI: st.TLI}}
		if st.TLI > 1 {
			b, err := os.ReadFile(filepath.Join(archiveDir, fmt.Sprintf("%08X.history", st.TLI)))
			if err != nil {
				return fail(fmt.Sprintf("history file of the current timeline %d is not in the archive: %v", st.TLI, err))
			}
			if history, err = parseHistory(st.TLI, b); err != nil {
				return fail(err.Error())
			}
		}
		rep.Timelines = rep.Timelines[:0]
		for _, tl := range history {
			if tl.TLI >= start.TLI {
				rep.Timelines = append(rep.Timelines, tl.TLI)
			}
		}
		needed, err := neededSegments(start, st.LSN/st.SegSize, history, st.SegSize)
		if err != nil {
			return fail(err.Error())
		}
		archived, err := archivedSegments(archiveDir, st.SegSize)
		if err != nil {
			return rep, driver.Permanent(driver.KindMisconfigured, fmt.Errorf("wal_archive_dir: %w", err))
		}
		rep.Needed, rep.Present = len(needed), 0
		rep.EndSegment = ""
		if len(needed) > 0 {
			rep.EndSegment = segName(needed[len(needed)-1], st.SegSize)
		}
		var missing []walPos
		lastPresent := -1
		for i, p := range needed {
			if archived[p] {
				rep.Present++
				lastPresent = i
			} else {
				missing = append(missing, p)
			}
		}
		// A segment the archiver reports archived but the directory lacks
		// is lost too (or wal_archive_dir is not where archive_command
		// writes).
		archivedUpTo, reported := parseSegName(st.LastArchivedWAL, st.SegSize)
		var gaps, tail []walPos
		for _, p := range missing {
			if (lastPresent >= 0 && p.Segno < needed[lastPresent].Segno) || (reported && p.Segno <= archivedUpTo.Segno) {
				gaps = append(gaps, p)
			} else {
				tail = append(tail, p)
			}
		}
		rep.MissingRanges, rep.Pending = missingRanges(gaps, st.SegSize), missingRanges(tail, st.SegSize)
		if len(gaps) > 0 {
			return fail("a restore from this base backup cannot replay past the first missing segment")
		}
		if len(tail) == 0 {
			rep.Status = walChainOK
			return rep, nil
		}
		if st.ArchiveMode == "off" {
			rep.MissingRanges, rep.Pending = rep.Pending, nil
			return fail("archive_mode is off")
		}
		if time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return rep, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		grace := st.ArchiveTimeout
		if grace <= 0 {
			grace = time.Minute
		}
		healthy := !st.LastArchivedAt.IsZero() && time.Since(st.LastArchivedAt) <= grace+walArchiveWait &&
			!st.LastFailedAt.After(st.LastArchivedAt)
		if healthy {
			rep.Status, rep.Reason = walChainWarning, "the newest segments are not archived yet; the archiver last archived "+st.LastArchivedWAL+" at "+st.LastArchivedAt.UTC().Format(time.RFC3339)
			return rep, nil
		}
		rep.MissingRanges, rep.Pending = rep.Pending, nil
		reason := "segments are not being archived"
		if !st.LastFailedAt.IsZero() {
			reason += fmt.Sprintf(": archiving %s last failed at %s", st.LastFailedWAL, st.LastFailedAt.UTC().Format(time.RFC3339))
		}
		return fail(reason)
	}
}

// walChain runs the WAL-chain check from the latest verified base backup
// of t (this run's, or an earlier one when this run made a pg_dump); with
// none, the report's status is empty and its reason says why.
func (r *run) walChain(ctx context.Context, t driver.Target) (walChainReport, error) {
	data := latestBaseBackup(backupRoot(t))
	if data == "" {
		return walChainReport{ArchiveDir: t.WALArchiveDir, Reason: "skipped: no verified pg_basebackup backup to start from"}, nil
	}
	return r.checkWALChain(ctx, t.WALArchiveDir, data)
}

// recordedWALChain returns the WAL-chain status and summary recorded with
// a backup ("" when it was not checked). The details may have been through
// JSON (the history store) or not (in memory).
func recordedWALChain(rec driver.BackupRecord) (string, string) {
	v, ok := rec.Details["wal_chain"]
	if !ok {
		return "", ""
	}
	var wc walChainReport
	b, err := json.Marshal(v)
	if err != nil || json.Unmarshal(b, &wc) != nil || wc.Status == "" {
		return "", ""
	}
	return wc.Status, wc.summary()
}
