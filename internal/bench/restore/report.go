package restore

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/themis-maintenance/themis/internal/bench/pgbench"
)

// Report is a benchmark's outcome.
type Report struct {
	StartedAt           time.Time `json:"started_at"`
	Server              string    `json:"server_version"`
	CPUs                int       `json:"cpus"`
	Scale               int64     `json:"pgbench_scale"`
	DatabaseBytes       int64     `json:"database_bytes"`
	GenerateSeconds     float64   `json:"generate_seconds"`
	BackupBytes         int64     `json:"backup_bytes"`
	BackupSeconds       float64   `json:"backup_verification_seconds"`
	WriteSeconds        int       `json:"write_seconds"`
	ArchivedAfterBackup int64     `json:"archived_after_backup_bytes"`
	Floor               Row       `json:"floor"`
	Rows                []Row     `json:"strategies"`
	TotalSeconds        float64   `json:"total_seconds"`
}

// Row is one line of the table: the floor or one strategy's restore.
type Row struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// RestoreSec is the restore's wall time (DrillRestore), CopySec and
	// ReplaySec its parts as driver.Scratch reports them.
	RestoreSec    float64 `json:"restore_s"`
	CopySec       float64 `json:"copy_s"`
	ReplaySec     float64 `json:"replay_s"`
	RestoredBytes int64   `json:"restored_bytes"`
	WALBytes      int64   `json:"wal_bytes"`
	WALRange      string  `json:"wal_range,omitempty"`
	// RateMiBs is RestoredBytes / RestoreSec.
	RateMiBs float64 `json:"rate_mib_s"`
	// FloorRatio is RestoreSec / the floor's time, CopyFloorRatio CopySec /
	// the floor's time.
	FloorRatio     float64  `json:"floor_ratio"`
	CopyFloorRatio float64  `json:"copy_floor_ratio"`
	RTOSec         *float64 `json:"rto_s,omitempty"`
	RPOMs          *float64 `json:"rpo_ms,omitempty"`
	Check          string   `json:"check,omitempty"`
	// Runs are every run's restore time (the row is the median run's).
	Runs []float64 `json:"runs_s,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as one table with its context.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "restore of a %s database (pgbench scale %d, generated in %.0f s), PostgreSQL %s, %d CPUs\n",
		pgbench.HumanBytes(r.DatabaseBytes), r.Scale, r.GenerateSeconds, r.Server, r.CPUs)
	fmt.Fprintf(w, "base backup %s, taken and verified by backup_verification in %.1f s; then %d s of pgbench writes (%s of WAL archived)\n\n",
		pgbench.HumanBytes(r.BackupBytes), r.BackupSeconds, r.WriteSeconds, pgbench.HumanBytes(r.ArchivedAfterBackup))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\trestore s\tcopy s\treplay s\trestored\tWAL replayed\tMiB/s\t× floor\tcopy × floor\tRTO s\tRPO ms\t")
	for _, row := range append([]Row{r.Floor}, r.Rows...) {
		wal, replay, rto, rpo := "-", "-", "-", "-"
		if row.WALBytes > 0 {
			wal = pgbench.HumanBytes(row.WALBytes)
		}
		if row.Name != r.Floor.Name {
			replay = fmt.Sprintf("%.2f", row.ReplaySec)
		}
		if row.RTOSec != nil {
			rto = fmt.Sprintf("%.1f", *row.RTOSec)
		}
		if row.RPOMs != nil {
			rpo = fmt.Sprintf("%.1f", *row.RPOMs)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t\n", row.Name, row.RestoreSec, row.CopySec, replay,
			pgbench.HumanBytes(row.RestoredBytes), wal, row.RateMiBs, row.FloorRatio, row.CopyFloorRatio, rto, rpo)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, row := range append([]Row{r.Floor}, r.Rows...) {
		fmt.Fprintf(w, "%s: %s", row.Name, row.Source)
		if len(row.Runs) > 1 {
			fmt.Fprintf(w, "; runs %s s (the median's row shown)", joinSeconds(row.Runs))
		}
		if row.WALRange != "" {
			fmt.Fprintf(w, "; WAL %s", row.WALRange)
		}
		if row.Check != "" {
			fmt.Fprintf(w, "; verified: %s", row.Check)
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "\nrestore s: DrillRestore's wall time (copy + replay + start-up and checks); × floor: restore s / the floor's time;\n"+
		"RTO: failure instant → verified (amcheck, row counts) and serving; RPO: failure instant − newest restored canary row. Total %.0f s.\n", r.TotalSeconds)
	return err
}

func joinSeconds(v []float64) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = fmt.Sprintf("%.2f", f)
	}
	return strings.Join(parts, ", ")
}
