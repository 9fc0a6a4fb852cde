package sqlite

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/themis-maintenance/themis/driver"
)

// dbFile is a target's database file: its absolute path and the SQLite URI
// parameters its DSN carries (a "file:" DSN may set vfs, cache, ...).
type dbFile struct {
	Path   string
	Params url.Values
}

// parseDSN reads a target's DSN, a path (relative paths are taken from the
// working directory) or a SQLite "file:" URI (file:/abs/path,
// file:///abs/path, file://localhost/abs/path, file:rel/path, each with
// optional ?params). The access mode is the driver's to choose, so a mode
// parameter is dropped; the other parameters are kept.
func parseDSN(dsn string) (dbFile, error) {
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return dbFile{}, fmt.Errorf("no database file configured")
	}
	f := dbFile{Params: url.Values{}}
	path := dsn
	if len(dsn) >= 5 && strings.EqualFold(dsn[:5], "file:") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dbFile{}, fmt.Errorf("the file: URI does not parse: %v", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return dbFile{}, fmt.Errorf("the file: URI names host %q; only an empty authority or localhost is allowed (write file:///abs/path or file:rel/path)", u.Host)
		}
		path = u.Path
		if u.Opaque != "" {
			if path, err = url.PathUnescape(u.Opaque); err != nil {
				return dbFile{}, fmt.Errorf("the file: URI path does not parse: %v", err)
			}
		}
		f.Params = u.Query()
		f.Params.Del("mode")
		if path == "" || path == ":memory:" || f.Params.Get("vfs") == "memdb" {
			return dbFile{}, fmt.Errorf("the file: URI names no database file")
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return dbFile{}, err
	}
	f.Path = abs
	return f, nil
}

// targetFile is parseDSN of the target's DSN, a Misconfigured error when
// it does not parse (the DSN itself is never quoted).
func targetFile(t driver.Target) (dbFile, error) {
	f, err := parseDSN(t.DSN)
	if err != nil {
		return dbFile{}, driver.Permanentf(driver.KindMisconfigured, "target %s: database: %v", t.Name, err)
	}
	return f, nil
}

// uri is the modernc DSN of the file with mode and busy timeout set and the
// DSN's other parameters kept.
func (f dbFile) uri(mode string, busy time.Duration) string {
	q := url.Values{}
	for k, v := range f.Params {
		q[k] = v
	}
	q.Set("mode", mode)
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	u := url.URL{Scheme: "file", Path: f.Path}
	// url.URL with an absolute Path and no Host prints file:///abs/path: an
	// empty authority, which SQLite accepts.
	return u.String() + "?" + q.Encode()
}

// fileURI is the modernc DSN of the file at abs (an absolute path): a
// SQLite URI (so special characters in the path are escaped) with the
// access mode ("rw" never creates the file, "ro" never writes) and a busy
// timeout.
func fileURI(abs, mode string, busy time.Duration) string {
	if a, err := filepath.Abs(abs); err == nil {
		abs = a
	}
	return dbFile{Path: abs}.uri(mode, busy)
}
