package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/themis-maintenance/themis/domain"
)

// Session names. Every connection a task uses on its target carries the
// application_name themis:<job>:<task>:a<attempt>, so that DBAs see which
// job a backend works for, and so that a retried attempt finds the
// backends of the attempt it replaces (same prefix, lower attempt) and
// terminates them before it starts: a worker killed mid-statement leaves a
// backend running, or waiting on a lock, that nobody would otherwise stop.
const (
	sessionNamePrefix = "themis:"
	// maxAppName is the longest application_name PostgreSQL keeps
	// (NAMEDATALEN - 1 bytes; longer names are truncated).
	maxAppName = 63
	// attemptRoom is the room kept for the attempt number, so that the
	// prefix of a job and task is the same whatever the attempt.
	attemptRoom = 6
	// jobHashLen is the number of hex digits of the SHA-256 of a job id
	// that stand for it when it does not fit or has unsafe characters.
	jobHashLen = 12
)

// sessionPrefix is the application_name of a job's task up to the attempt
// number: "themis:<job>:<task>:a". A job id longer than the room left, or
// holding anything but letters, digits and ._-@+=, is shortened to its
// first safe characters, "~" and a hash of the whole id, so the name
// stays within 63 bytes and is the same for every attempt.
func sessionPrefix(jobID string, task domain.TaskType) string {
	tail := ":" + string(task) + ":a"
	room := maxAppName - len(sessionNamePrefix) - len(tail) - attemptRoom
	job := jobID
	if len(job) > room || strings.IndexFunc(job, unsafeNameRune) >= 0 {
		sum := sha256.Sum256([]byte(jobID))
		keep := max(0, room-1-jobHashLen)
		safe := job
		if i := strings.IndexFunc(safe, unsafeNameRune); i >= 0 {
			safe = safe[:i]
		}
		if len(safe) > keep {
			safe = safe[:keep]
		}
		job = safe + "~" + hex.EncodeToString(sum[:])[:jobHashLen]
	}
	return sessionNamePrefix + job + tail
}

func unsafeNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@+=", r))
}

// sessionName is the application_name of one attempt of a job's task; ""
// when the request names no job (the connections keep ApplicationName).
// Attempt numbers below 1 count as the first attempt.
func sessionName(jobID string, task domain.TaskType, attempt int) string {
	if jobID == "" {
		return ""
	}
	return sessionPrefix(jobID, task) + strconv.Itoa(max(1, attempt))
}

// SessionName is the application_name that the sessions of one attempt of
// a job's task carry on the target: themis:<job>:<task>:a<attempt>, the job
// id shortened to "<safe prefix>~<hash>" when it does not fit in 63 bytes.
// Monitoring and tests match backends with it.
func SessionName(jobID string, task domain.TaskType, attempt int) string {
	return sessionName(jobID, task, attempt)
}

// attemptOf parses the attempt number of a session name that starts with
// prefix.
func attemptOf(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

type sessionNameKey struct{}

// withSessionName makes every connection acquired with ctx (from a target
// pool, or by connectOnce) carry application_name name.
func withSessionName(ctx context.Context, name string) context.Context {
	if name == "" {
		return ctx
	}
	return context.WithValue(ctx, sessionNameKey{}, name)
}

func sessionNameFrom(ctx context.Context) (string, bool) {
	n, ok := ctx.Value(sessionNameKey{}).(string)
	return n, ok && n != ""
}

// nameConn gives a pooled connection the application_name of the run that
// acquires it (or def outside a run) when it does not carry it already.
// The server reports application_name changes (ParameterStatus), so a
// connection reused by the same run costs no round trip.
func nameConn(ctx context.Context, c *pgx.Conn, def string) error {
	want := def
	if n, ok := sessionNameFrom(ctx); ok {
		want = n
	}
	if c.PgConn().ParameterStatus("application_name") == want {
		return nil
	}
	_, err := c.Exec(ctx, "SELECT set_config('application_name', $1, false)", want)
	return err
}

// setConnectionCheck sets client_connection_check_interval on a new
// connection where the server has it (PostgreSQL 14+): a backend then
// notices within the interval that its client went away (a worker killed
// with -9, a lost host) and stops its statement, a lock wait included,
// instead of running it to the end. Platforms without the kernel support
// refuse any value but 0; that is not an error.
func setConnectionCheck(ctx context.Context, pc *pgconn.PgConn, every time.Duration) error {
	if every <= 0 || serverMajor(pc.ParameterStatus("server_version")) < 14 {
		return nil
	}
	ms := strconv.FormatInt(max(1, every.Milliseconds()), 10)
	err := pc.Exec(ctx, "SET client_connection_check_interval = "+ms).Close()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == pgerrcode.InvalidParameterValue || pgErr.Code == pgerrcode.UndefinedObject) {
		return nil
	}
	return err
}

// serverMajor parses the major version of a server_version ("15.8 (Debian
// 15.8-1)" → 15, "9.6.24" → 9); 0 when it does not parse.
func serverMajor(v string) int {
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}
