// Package audit is the audit log of Themis Maintenance (docs/ARCHITECTURE.md): one JSON
// object per line, appended to a file, for every write through the API and
// every request refused for want of credentials (401) or scope (403).
//
// An event is
//
//	{"time":"2025-01-01T02:00:00.123Z","request_id":"…","principal":"ops-oncall",
//	 "action":"schedule.disable","resource":"schedule/nightly","outcome":"success",
//	 "status":200,"detail":"fields: enabled"}
//
// Two sinks keep the log, behind the same methods (Sink):
//
//   - Log, the default, appends to a file of this process. Writes are
//     serialised by a mutex, each opens the file in append mode (created
//     0600, parent directories 0700; an existing file with wider
//     permissions is narrowed to 0600), writes one line and fsyncs before
//     it returns, so an event that Record accepted survives a crash and a
//     file moved away by log rotation is simply created again. A last line
//     torn by a short write, a full disk or a crash is closed with a newline
//     before the next event is appended (at Open and at every Record), so
//     the torn fragment never swallows the next event; Read scans the file
//     and skips lines that are not events, the torn one included.
//   - StoreLog keeps the events in the history store (table audit_events),
//     so that every API replica sharing a PostgreSQL history store writes
//     and reads one log.
//
// The log never holds secrets: callers put token names, never tokens, in
// Principal, and Sanitize strips credentials that slipped into a detail.
package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Outcomes of an audited request.
const (
	// OutcomeSuccess: the request was carried out (2xx).
	OutcomeSuccess = "success"
	// OutcomeFailure: the request was authorised but refused or failed
	// (400, 404, 409, 413, 415, 5xx).
	OutcomeFailure = "failure"
	// OutcomeDenied: the request was refused for want of credentials (401)
	// or scope (403).
	OutcomeDenied = "denied"
)

// MaxDetailLen bounds Event.Detail (in runes) when written.
const MaxDetailLen = 2000

// Event is one line of the audit log.
type Event struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// Principal is the authenticated caller (a token's name), "anonymous"
	// when authentication is disabled, "" when the caller is unknown (401).
	Principal string `json:"principal"`
	// Action is what was attempted, e.g. schedule.create, schedule.disable,
	// schedule.run, job.cancel, drill.approve.
	Action string `json:"action"`
	// Resource names the object, e.g. schedule/nightly, job/<id>, drill/<id>;
	// a collection ("schedules") when no object was made.
	Resource string `json:"resource"`
	Outcome  string `json:"outcome"`
	// Status is the HTTP status of the answer.
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// Sink is where the gateway writes and reads audit events: *Log (a file of
// this process) or *StoreLog (the shared history store).
type Sink interface {
	// Record appends one event durably; an error means it is not in the log.
	Record(ctx context.Context, e Event) error
	// Read returns the newest limit events at or after since (zero: all),
	// oldest first; limit <= 0 means no limit.
	Read(ctx context.Context, since time.Time, limit int) (Page, error)
}

var (
	_ Sink = (*Log)(nil)
	_ Sink = (*StoreLog)(nil)
)

// Log appends events to one file. It is safe for concurrent use.
type Log struct {
	path string
	mu   sync.Mutex
}

// Open returns the log writing to path, creating its directory (0700) and
// the file (0600) now so that a path that cannot be written is reported at
// start-up rather than at the first write.
func Open(path string) (*Log, error) {
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("audit: no log path")
	}
	l := &Log{path: path}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := l.openLocked()
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return l, nil
}

// Path returns the file the log writes to.
func (l *Log) Path() string { return l.path }

func (l *Log) openLocked() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create log directory: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: open log: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("audit: narrow log permissions: %w", err)
		}
	}
	if err := closeTornLine(f, st.Size()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: repair torn last line: %w", err)
	}
	return f, nil
}

// closeTornLine appends a newline to f (of size bytes) when its last byte is
// not one: the end of a line torn by a short write, a full disk or a crash.
// The fragment then stays a line of its own, which readers skip, instead of
// becoming the start of the next event's line.
func closeTornLine(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return err
	}
	return f.Sync()
}

// Record appends e as one line and syncs it to disk. A zero Time is set to
// now; Detail is sanitised and clipped. The error, if any, means the event
// is not (or not durably) in the log: callers must report it elsewhere. A
// write that failed part way leaves a torn line, which the next Record
// closes before it appends.
func (l *Log) Record(_ context.Context, e Event) error {
	line, err := Marshal(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := l.openLocked()
	if err != nil {
		return err
	}
	_, werr := f.Write(line)
	var serr error
	if werr == nil {
		serr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("audit: append to log: %w", err)
	}
	return nil
}

// Read returns the events of this log; see the package function Read.
func (l *Log) Read(_ context.Context, since time.Time, limit int) (Page, error) {
	return Read(l.path, since, limit)
}

// Marshal renders e as it is written: one JSON line ending in "\n", with
// Time in UTC (now when zero) and Detail sanitised and clipped.
func Marshal(e Event) ([]byte, error) {
	b, err := json.Marshal(normalize(e))
	if err != nil {
		return nil, fmt.Errorf("audit: encode event: %w", err)
	}
	return append(b, '\n'), nil
}

// normalize is e as it is written: Time in UTC (now when zero), Detail
// sanitised and clipped, Principal and Resource clipped.
func normalize(e Event) Event {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.Detail = clip(Sanitize(e.Detail), MaxDetailLen)
	e.Principal = clip(e.Principal, 200)
	e.Resource = clip(e.Resource, 300)
	return e
}

// Page is the answer of Read.
type Page struct {
	// Events are the newest matching events, oldest first.
	Events []Event `json:"events"`
	// Truncated is true when more events matched than the limit allowed
	// (the oldest ones were left out).
	Truncated bool `json:"truncated"`
	// Skipped counts lines that are not events (torn or foreign lines).
	Skipped int `json:"-"`
}

// maxLineBytes bounds one line when reading; longer lines are skipped.
const maxLineBytes = 1 << 20

// Read returns the newest limit events of the log at path whose time is at
// or after since (zero: all), oldest first. limit <= 0 means no limit. A
// log that does not exist yet has no events.
func Read(path string, since time.Time, limit int) (Page, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Page{Events: []Event{}}, nil
	}
	if err != nil {
		return Page{}, fmt.Errorf("audit: open log: %w", err)
	}
	defer f.Close()
	return readFrom(f, since, limit)
}

func readFrom(r io.Reader, since time.Time, limit int) (Page, error) {
	page := Page{Events: []Event{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var ring []Event
	next := 0 // ring write position once full
	for {
		line, tooLong, err := readLine(br)
		switch {
		case tooLong:
			page.Skipped++
		case len(line) == 0:
		default:
			e, ok := parseEvent(line)
			if !ok {
				page.Skipped++
				break
			}
			if !since.IsZero() && e.Time.Before(since) {
				break
			}
			if limit <= 0 || len(ring) < limit {
				ring = append(ring, e)
				break
			}
			ring[next] = e
			next = (next + 1) % limit
			page.Truncated = true
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Page{}, fmt.Errorf("audit: read log: %w", err)
		}
	}
	page.Events = append(page.Events, ring[next:]...)
	page.Events = append(page.Events, ring[:next]...)
	return page, nil
}

// parseEvent decodes one stored event; ok is false for anything that is not
// one (a torn or foreign line).
func parseEvent(b []byte) (Event, bool) {
	var e Event
	if json.Unmarshal(b, &e) != nil || e.Time.IsZero() || e.Action == "" {
		return Event{}, false
	}
	return e, true
}

// readLine returns the next line without its line ending; a line longer
// than maxLineBytes is consumed and reported as tooLong.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > maxLineBytes {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return trimEOL(buf), tooLong, err
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Credentials that may slip into a detail or an error text.
var secretPatterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	// scheme://user:password@host
	{regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@`), "${1}***@"},
	// key=value DSN parameters and similar assignments; the value is every
	// quoted or unquoted piece up to a separator (`''0` whole, so that a
	// second pass finds nothing new)
	{regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token|api_key|apikey|sslpassword)(\s*[=:]\s*)(?:"[^"]*"|'[^']*'|[^\s,;&])+`), "${1}${2}***"},
	// bearer credentials
	{regexp.MustCompile(`(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+`), "${1} ***"},
	// Themis API tokens (auth.NewToken)
	{regexp.MustCompile(`\bthm_[A-Za-z0-9_-]{8,}`), "thm_***"},
}

// Sanitize masks credentials in s: passwords in URLs, password=/token=
// assignments, bearer tokens and Themis API tokens.
func Sanitize(s string) string {
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	return s
}

func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Select applies Read's rules to events in log order: the newest limit
// events at or after since (zero: all), oldest first; limit <= 0 means no
// limit. It is for in-memory logs (tests, fakes).
func Select(events []Event, since time.Time, limit int) Page {
	page := Page{Events: []Event{}}
	for _, e := range events {
		if since.IsZero() || !e.Time.Before(since) {
			page.Events = append(page.Events, e)
		}
	}
	if limit > 0 && len(page.Events) > limit {
		page.Events = append([]Event{}, page.Events[len(page.Events)-limit:]...)
		page.Truncated = true
	}
	return page
}
