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
	"password":                 "PGPASSWORD",
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
// binaries connect where pgx does without the password appearing in any
// process's argument list. Setting dbname overrides the database.
func LibpqEnv(dsn, dbname string) ([]string, error) {
	params, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if dbname != "" {
		params["dbname"] = dbname
	}
	var env []string
	for k, v := range params {
		if name, ok := libpqEnv[k]; ok {
			env = append(env, name+"="+v)
		}
	}
	sort.Strings(env)
	return env, nil
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

func parseURL(dsn string) (map[string]string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// The error text may contain the password; do not wrap it.
		return nil, fmt.Errorf("connection URL does not parse")
	}
	out := map[string]string{}
	if u.User != nil {
		if n := u.User.Username(); n != "" {
			out["user"] = n
		}
		if p, ok := u.User.Password(); ok {
			out["password"] = p
		}
	}
	if u.Host != "" {
		var hosts, ports []string
		for _, hp := range strings.Split(u.Host, ",") {
			h, p := hp, ""
			if i := strings.LastIndex(hp, ":"); i >= 0 && !strings.HasSuffix(hp, "]") {
				h, p = hp[:i], hp[i+1:]
			}
			hosts = append(hosts, strings.Trim(h, "[]"))
			ports = append(ports, p)
		}
		out["host"] = strings.Join(hosts, ",")
		if strings.Join(ports, "") != "" {
			out["port"] = strings.Join(ports, ",")
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		out["dbname"] = db
	}
	for k, vs := range u.Query() {
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
