package pgbin

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// libpqEnv maps connection-string keywords onto the libpq environment
// variables client binaries read. Keywords only pgx knows (pool_max_conns,
// statement_cache_capacity, ...) have no entry and are dropped.
var libpqEnv = map[string]string{
	"host":                     "PGHOST",
	"hostaddr":                 "PGHOSTADDR",
	"port":                     "PGPORT",
	"dbname":                   "PGDATABASE",
	"user":                     "PGUSER",
	"passfile":                 "PGPASSFILE",
	"service":                  "PGSERVICE",
	"servicefile":              "PGSERVICEFILE",
	"options":                  "PGOPTIONS",
	"application_name":         "PGAPPNAME",
	"connect_timeout":          "PGCONNECT_TIMEOUT",
	"sslmode":                  "PGSSLMODE",
	"sslcert":                  "PGSSLCERT",
	"sslkey":                   "PGSSLKEY",
	"sslrootcert":              "PGSSLROOTCERT",
	"sslcrl":                   "PGSSLCRL",
	"sslsni":                   "PGSSLSNI",
	"requirepeer":              "PGREQUIREPEER",
	"gssencmode":               "PGGSSENCMODE",
	"krbsrvname":               "PGKRBSRVNAME",
	"channel_binding":          "PGCHANNELBINDING",
	"target_session_attrs":     "PGTARGETSESSIONATTRS",
	"client_encoding":          "PGCLIENTENCODING",
	"ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
	"ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
}

// LibpqEnv turns a connection string (URL or keyword/value form) into
// KEY=VALUE libpq environment variables, sorted by key, so that client
// binaries connect where pgx does. The password is left out: LibpqConn
// returns it for Runner.Password, which hands it over in a passfile.
// Setting dbname overrides the database.
func LibpqEnv(dsn, dbname string) ([]string, error) {
	env, _, err := LibpqConn(dsn, dbname)
	return env, err
}

// LibpqConn is LibpqEnv that also returns the connection string's password
// ("" when it has none), for Runner.Password.
func LibpqConn(dsn, dbname string) (env []string, password string, err error) {
	params, err := ParseDSN(dsn)
	if err != nil {
		return nil, "", err
	}
	if dbname != "" {
		params["dbname"] = dbname
	}
	for k, v := range params {
		if name, ok := libpqEnv[k]; ok {
			env = append(env, name+"="+v)
		}
	}
	sort.Strings(env)
	return env, params["password"], nil
}

// ParseDSN parses a libpq connection string in URL form
// (postgres://user:pass@host:port,host2/db?k=v) or keyword/value form
// (host=h port=5432 password='a b') into keyword → value.
func ParseDSN(dsn string) (map[string]string, error) {
	dsn = strings.TrimSpace(dsn)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return parseURL(dsn)
	}
	return parseKeywordValue(dsn)
}

// parseURL parses a connection URI by hand: net/url rejects the
// multi-host form (postgres://h1:5432,h2:5433/db) libpq and pgx accept.
func parseURL(dsn string) (map[string]string, error) {
	_, rest, _ := strings.Cut(dsn, "://")
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	out := map[string]string{}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo := authority[:i]
		authority = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		u, err := url.PathUnescape(user)
		if err != nil {
			return nil, fmt.Errorf("connection URL: bad escape in the user name")
		}
		if u != "" {
			out["user"] = u
		}
		if hasPass {
			p, err := url.PathUnescape(pass)
			if err != nil {
				// Never quote the password, even in part.
				return nil, fmt.Errorf("connection URL: bad escape in the password")
			}
			out["password"] = p
		}
	}
	if authority != "" {
		var hosts, ports []string
		for _, hp := range strings.Split(authority, ",") {
			h, p := hp, ""
			if strings.HasPrefix(hp, "[") {
				if end := strings.Index(hp, "]"); end >= 0 {
					h = hp[1:end]
					p = strings.TrimPrefix(hp[end+1:], ":")
				}
			} else if i := strings.LastIndex(hp, ":"); i >= 0 {
				h, p = hp[:i], hp[i+1:]
			}
			h, err := url.PathUnescape(h)
			if err != nil {
				return nil, fmt.Errorf("connection URL: bad escape in the host")
			}
			hosts = append(hosts, h)
			ports = append(ports, p)
		}
		out["host"] = strings.Join(hosts, ",")
		if strings.Join(ports, "") != "" {
			out["port"] = strings.Join(ports, ",")
		}
	}
	if path != "" {
		db, err := url.PathUnescape(path)
		if err != nil {
			return nil, fmt.Errorf("connection URL: bad escape in the database name")
		}
		out["dbname"] = db
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("connection URL: query parameters do not parse")
	}
	for k, vs := range q {
		if len(vs) > 0 {
			out[k] = vs[len(vs)-1]
		}
	}
	return out, nil
}

func parseKeywordValue(s string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		key := s[start:i]
		skipSpace()
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("connection string: keyword %q has no value", key)
		}
		i++
		skipSpace()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '\'' {
					i++
					closed = true
					break
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("connection string: unterminated quoted value of %q", key)
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		out[key] = val.String()
	}
}
