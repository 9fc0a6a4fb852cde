package pgbin

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		want map[string]string
	}{
		{"postgres://app:s%3Ac%40ret@db1:5433,db2/orders?sslmode=require&pool_max_conns=4",
			map[string]string{"user": "app", "password": "s:c@ret", "host": "db1,db2", "port": "5433,", "dbname": "orders", "sslmode": "require", "pool_max_conns": "4"}},
		{"postgresql://[::1]:5432/x", map[string]string{"host": "::1", "port": "5432", "dbname": "x"}},
		{`host=h password=a\ b dbname = d`, map[string]string{"host": "h", "password": "a b", "dbname": "d"}},
	}
	for _, tc := range tests {
		got, err := ParseDSN(tc.dsn)
		if err != nil {
			t.Errorf("%q: %v", tc.dsn, err)
			continue
		}
		if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %v\nwant %v", tc.dsn, got, tc.want)
		}
	}
	got, err := ParseDSN(`user=ops password='it\'s spaced' dbname=shop`)
	if err != nil || got["password"] != "it's spaced" || got["dbname"] != "shop" {
		t.Errorf("quoted value: %v %v", got, err)
	}
	for _, bad := range []string{"host", "password='unterminated"} {
		if _, err := ParseDSN(bad); err == nil {
			t.Errorf("%q parsed", bad)
		} else if strings.Contains(err.Error(), "unterminated") && strings.Contains(err.Error(), "password=") {
			t.Errorf("error echoes the value: %v", err)
		}
	}
}

func TestLibpqEnv(t *testing.T) {
	env, err := LibpqEnv("postgres://app:pw@db:6432/orders?sslmode=verify-full&sslrootcert=/ca.pem&statement_cache_capacity=0", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PGDATABASE=orders", "PGHOST=db", "PGPORT=6432", "PGSSLMODE=verify-full", "PGSSLROOTCERT=/ca.pem", "PGUSER=app"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("got %v\nwant %v", env, want)
	}
	env, _ = LibpqEnv("host=h dbname=a", "b")
	if !reflect.DeepEqual(env, []string{"PGDATABASE=b", "PGHOST=h"}) {
		t.Errorf("dbname override: %v", env)
	}
}

func TestConfValue(t *testing.T) {
	for in, want := range map[string]string{
		"5432": "5432", "on": "on", "": "''", "128MB": "128MB", "C.UTF-8": "'C.UTF-8'",
		"/tmp/a b": "'/tmp/a b'", `cp "%p" 'x'`: `'cp "%p" ''x'''`,
	} {
		if got := confValue(in); got != want {
			t.Errorf("confValue(%q) = %s, want %s", in, got, want)
		}
	}
}
