package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzSanitize: the sanitiser never panics, is idempotent, never lets a
// planted secret through (a password in a URL, a password= pair, a bearer
// token, a Themis token, around any fuzzed text), and an event carrying
// the result still marshals to one JSON line that reads back.
//
//	go test ./internal/audit -run '^$' -fuzz FuzzSanitize -fuzztime 30s
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "plain text", "postgres://u:p@h/db", "password=x token=y", "Bearer abc.def",
		"thm_0123456789abcdef", "a\nb\x00c", "\xff\xfe", strings.Repeat("=", 100), "pwd : 'quoted secret' ;"} {
		f.Add(s, "before ")
	}
	const secret = "Zq9SecretCanary7"
	f.Fuzz(func(t *testing.T, s, prefix string) {
		once := Sanitize(s)
		if twice := Sanitize(once); twice != once {
			t.Fatalf("not idempotent: %q → %q → %q", s, once, twice)
		}
		// Planted secrets in fuzzed surroundings (separated by a space, as
		// they appear in error texts).
		for _, planted := range []string{
			"postgres://user:" + secret + "@db.example:5432/x",
			"password=" + secret,
			"PASSWORD: " + secret,
			"Authorization: Bearer " + secret,
			"thm_" + secret,
		} {
			out := Sanitize(prefix + " " + planted + " " + s)
			if strings.Contains(out, secret) && !strings.Contains(prefix+s, secret) {
				t.Fatalf("secret kept: %q", out)
			}
		}
		line, err := Marshal(Event{Time: time.Unix(1, 0), Action: "x.y", Detail: s})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(line), "\n") != 1 || !strings.HasSuffix(string(line), "\n") {
			t.Fatalf("not one line: %q", line)
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("does not read back: %v", err)
		}
	})
}
