package postgres

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// drillMeta is the drill directory's marker (themis-scratch.json).
type drillMeta struct {
	Kind        string    `json:"kind"`
	DrillID     string    `json:"drill_id"`
	Target      string    `json:"target"`
	State       string    `json:"state"`
	StartedAt   time.Time `json:"started_at"`
	ReadyAt     time.Time `json:"ready_at,omitempty"`
	Source      string    `json:"source,omitempty"`
	LSN         string    `json:"lsn,omitempty"`
	Port        int       `json:"port,omitempty"`
	SocketDir   string    `json:"socket_dir,omitempty"`
	OSUser      string    `json:"os_user,omitempty"`
	Database    string    `json:"database"`
	Superuser   string    `json:"superuser"`
	BinDir      string    `json:"bin_dir"`
	MaxPrepared int       `json:"max_prepared_transactions"`
	// What the restore did (driver.Scratch's fields of the same names).
	Strategy      string    `json:"strategy,omitempty"`
	RestoredFrom  string    `json:"restored_from,omitempty"`
	BackupID      string    `json:"backup_id,omitempty"`
	BackupAt      time.Time `json:"backup_at,omitzero"`
	WALRange      string    `json:"wal_range,omitempty"`
	RestoredBytes int64     `json:"restored_bytes,omitempty"`
	WALBytes      int64     `json:"wal_bytes,omitempty"`
	CopyMs        int64     `json:"copy_ms,omitempty"`
	ReplayMs      int64     `json:"replay_ms,omitempty"`
}

func readDrillMeta(p drillPaths) (drillMeta, error) {
	var m drillMeta
	b, err := os.ReadFile(p.marker())
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.Kind != drillKind {
		return m, fmt.Errorf("%s is not a drill marker", p.marker())
	}
	return m, nil
}

func writeDrillMeta(p drillPaths, m drillMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := p.marker() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, p.marker())
}

// location says how an operator reaches the scratch instance: through its
// socket directory, as the server's OS account (or root).
func (m drillMeta) location() string {
	s := fmt.Sprintf("psql -h %s -p %d -U %s -d %s", m.SocketDir, m.Port, m.Superuser, m.Database)
	if m.OSUser != "" {
		s += " (as OS user " + m.OSUser + ")"
	}
	return s
}

func (m drillMeta) scratch(p drillPaths) driver.Scratch {
	from := m.RestoredFrom
	if from == "" { // a marker written before strategies existed
		from = fmt.Sprintf("pg_basebackup of %s at %s", m.Source, m.LSN)
	}
	strategy := m.Strategy
	if strategy == "" {
		strategy = driver.StrategyReplicaClone
	}
	return driver.Scratch{
		DrillID: m.DrillID, Dir: p.dir, Port: m.Port,
		Location:     m.location(),
		RestoredFrom: from,
		Strategy:     strategy,
		BackupID:     m.BackupID, BackupAt: m.BackupAt, WALRange: m.WALRange,
		RestoredBytes: m.RestoredBytes, WALBytes: m.WALBytes, CopyMs: m.CopyMs, ReplayMs: m.ReplayMs,
	}
}
