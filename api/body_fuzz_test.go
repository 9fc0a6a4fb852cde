package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

// FuzzParseObject: the request body decoder never panics; it accepts
// exactly the bodies that are one JSON object with no key given twice in
// any object (checked against a reference walk over encoding/json's
// generic decoding), and refuses everything else with a 400 invalid_json.
//
//	go test ./api -run '^$' -fuzz FuzzParseObject -fuzztime 30s
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":2}]}`,
		`{"a":[{"b":1,"b":1}]}`, `[]`, `null`, `{"a":1}{}`, `{"\u0061":1,"a":2}`, `{"a.b":1,"a":{"b":2}}`, "{\"a\":\"\xff\"}",
		`{"a":{"a":{"a":{}}}}`, `{`, `{"a":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseObject(body)
		want := referenceAccepts(body)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status != http.StatusBadRequest || re.code != CodeInvalidJSON {
				t.Fatalf("%q: %v", body, err)
			}
			if want {
				t.Fatalf("%q refused (%v) but it is one object without duplicate keys", body, err)
			}
			return
		}
		if m == nil || !want {
			t.Fatalf("%q accepted (%v)", body, m)
		}
	})
}

// referenceAccepts reports whether body is valid UTF-8 holding exactly one
// JSON object in which no object names a key twice.
func referenceAccepts(body []byte) bool {
	if !json.Valid(body) { // one JSON value, nothing after it but space
		return false
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		return false
	}
	if _, ok := v.(map[string]any); !ok {
		return false
	}
	if dec.More() {
		return false
	}
	if _, err := dec.Token(); err == nil {
		return false
	}
	if !jsonValidUTF8(body) {
		return false
	}
	return !hasDuplicates(json.NewDecoder(bytes.NewReader(body)))
}

func jsonValidUTF8(b []byte) bool { return bytes.Equal(bytes.ToValidUTF8(b, []byte("\uFFFD")), b) }

// hasDuplicates reads one value from dec recursively.
func hasDuplicates(dec *json.Decoder) bool {
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, _ := dec.Token()
			k, _ := kt.(string)
			if seen[k] {
				return true
			}
			seen[k] = true
			if hasDuplicates(dec) {
				return true
			}
		}
		_, _ = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if hasDuplicates(dec) {
				return true
			}
		}
		_, _ = dec.Token()
	}
	return false
}
