package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/themis-maintenance/themis/domain"
)

// readBody reads the request body within the size limit and checks that a
// non-empty body is JSON. It returns nil for an empty body.
func (h *handler) readBody(c *gin.Context) ([]byte, error) {
	r := c.Request
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, errBodyTooLarge(limit)
	}
	ct := r.Header.Get("Content-Type")
	if r.ContentLength > 0 && !isJSONMediaType(ct) {
		return nil, errUnsupportedMediaType(ct)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge(limit)
		}
		return nil, badRequest(CodeInvalidJSON, "", "cannot read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if !isJSONMediaType(ct) {
		return nil, errUnsupportedMediaType(ct)
	}
	return body, nil
}

// parseObject parses body as exactly one JSON object.
func parseObject(body []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, badRequest(CodeInvalidJSON, "", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, badRequest(CodeInvalidJSON, "", "malformed JSON at byte %d: %s", se.Offset, se.Error())
		case errors.As(err, &te):
			return nil, badRequest(CodeInvalidJSON, "", "request body must be a JSON object, got %s", te.Value)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, badRequest(CodeInvalidJSON, "", "malformed JSON: unexpected end of input")
		}
		return nil, badRequest(CodeInvalidJSON, "", "malformed JSON")
	}
	if m == nil {
		return nil, badRequest(CodeInvalidJSON, "", "request body must be a JSON object, got null")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest(CodeInvalidJSON, "", "unexpected data after the JSON object")
	}
	if err := checkDuplicateKeys(body); err != nil {
		return nil, err
	}
	return m, nil
}

// checkDuplicateKeys refuses an object, at any depth, that names a key
// twice: Go's decoder keeps the last one silently, and a proxy or audit
// reader that keeps the first would see another request than the one
// carried out. body has been decoded once already (it is valid JSON).
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	// One frame per open object or array. An object's frame holds its keys
	// so far, its own dotted path, the key whose value is being read and
	// whether a key comes next; an array's frame has no keys.
	type frame struct {
		keys      map[string]bool
		path, key string
		expectKey bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return badRequest(CodeInvalidJSON, "", "malformed JSON")
		}
		n := len(stack)
		if n > 0 && stack[n-1].keys != nil && stack[n-1].expectKey {
			top := &stack[n-1]
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				field := joinPath(top.path, k)
				return badRequest(CodeInvalidJSON, clip(field, 100), "duplicate key %q in a JSON object", clip(field, 100))
			}
			top.keys[k] = true
			top.key = k
			top.expectKey = false
			continue
		}
		var path string
		if n > 0 {
			top := &stack[n-1]
			path = top.path
			if top.keys != nil {
				path = joinPath(top.path, top.key)
				top.expectKey = true
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]bool{}, path: path, expectKey: true})
		case json.Delim('['):
			stack = append(stack, frame{path: path})
		case json.Delim(']'):
			stack = stack[:n-1]
		}
	}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// requireObject is parseObject for endpoints whose body is mandatory.
func requireObject(body []byte) (map[string]json.RawMessage, error) {
	if body == nil {
		return nil, badRequest(CodeInvalidJSON, "", "request body is required (a JSON object)")
	}
	return parseObject(body)
}

// fieldKinds names the JSON type of each writable schedule field, for error
// messages about wrong types.
var fieldKinds = map[string]string{
	"name":                 "a string",
	"description":          "a string",
	"target":               "a string",
	"frequency":            "a string (daily, weekly, monthly, quarterly, custom)",
	"cron_expression":      "a string (5-field cron expression)",
	"timezone":             "a string (IANA time zone name)",
	"tasks":                "an array of task type names",
	"task_options":         "an object mapping task types to option objects",
	"enabled":              "a boolean",
	"enforce_window":       "a boolean",
	"window_start_hour":    "an integer 0–23",
	"window_end_hour":      "an integer 0–23",
	"halt_on_task_failure": "a boolean",
	"task_dependencies":    "an array of {task_type, depends_on} objects",
	"force":                "a boolean",
	"dry_run":              "a boolean",
	"time_limit_minutes":   "an integer 0–10080",
	"wait":                 "a duration string (e.g. \"30s\")",
}

// writableScheduleFields are the JSON keys of domain.ScheduleSpec.
var writableScheduleFields = func() map[string]bool {
	b, err := json.Marshal(domain.NewScheduleSpec(""))
	if err != nil {
		panic(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}()

// cleanScheduleObject drops the read-only fields (so a GET body can be sent
// back) and refuses unknown fields and nulls, in a stable order.
func cleanScheduleObject(m map[string]json.RawMessage) error {
	for _, k := range domain.ReadOnlyScheduleFields {
		delete(m, k)
	}
	return checkFields(m, writableScheduleFields)
}

// checkFields refuses keys outside allowed and null values.
func checkFields(m map[string]json.RawMessage, allowed map[string]bool) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !allowed[k] {
			return badRequest(CodeUnknownField, clip(k, 100), "unknown field %q", clip(k, 100))
		}
	}
	for _, k := range keys {
		if string(bytes.TrimSpace(m[k])) == "null" {
			return badRequest(CodeValidationFailed, k, "%s must not be null", k)
		}
	}
	return nil
}

// decodeInto strictly decodes the object m over dst, reporting wrong types
// with the field name.
func decodeInto(m map[string]json.RawMessage, dst any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return badRequest(CodeInvalidJSON, "", "malformed JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field, _, _ := strings.Cut(te.Field, ".")
			kind := fieldKinds[field]
			if kind == "" {
				kind = "of another type"
			}
			return badRequest(CodeValidationFailed, te.Field, "%s must be %s, got %s", te.Field, kind, te.Value)
		}
		if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f := strings.Trim(msg, `"`)
			return badRequest(CodeUnknownField, clip(f, 100), "unknown field %s", clip(msg, 100))
		}
		return badRequest(CodeInvalidJSON, "", "malformed JSON")
	}
	return nil
}

// decodeScheduleBody turns a create or replace body into a spec over the
// creation defaults, normalised. present lists the keys the body gave.
func (h *handler) decodeScheduleBody(body []byte) (domain.ScheduleSpec, map[string]json.RawMessage, error) {
	m, err := requireObject(body)
	if err != nil {
		return domain.ScheduleSpec{}, nil, err
	}
	if err := cleanScheduleObject(m); err != nil {
		return domain.ScheduleSpec{}, nil, err
	}
	spec := domain.NewScheduleSpec(h.svc.DefaultTarget())
	if err := decodeInto(m, &spec); err != nil {
		return domain.ScheduleSpec{}, nil, err
	}
	if err := checkTargetName(spec.Target); err != nil {
		return domain.ScheduleSpec{}, nil, err
	}
	if err := spec.Normalize(h.svc.TargetKnown); err != nil {
		return domain.ScheduleSpec{}, nil, err
	}
	return spec, m, nil
}

// applyPatch overlays the patch object on cur (JSON merge-patch semantics, docs/MAINTENANCE_SCHEDULE.md) and
// returns the normalised result. The stored cron expression is kept only
// when the resulting frequency is custom; otherwise it is derived again
// (e.g. from a patched window_start_hour).
func (h *handler) applyPatch(cur domain.ScheduleSpec, patch map[string]json.RawMessage) (domain.ScheduleSpec, error) {
	b, err := json.Marshal(cur)
	if err != nil {
		return domain.ScheduleSpec{}, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return domain.ScheduleSpec{}, err
	}
	freq := cur.Frequency
	if raw, ok := patch["frequency"]; ok {
		if err := json.Unmarshal(raw, &freq); err != nil {
			return domain.ScheduleSpec{}, badRequest(CodeValidationFailed, "frequency", "frequency must be %s", fieldKinds["frequency"])
		}
	}
	if freq != domain.FrequencyCustom {
		delete(obj, "cron_expression")
	}
	for k, v := range patch {
		obj[k] = v
	}
	var next domain.ScheduleSpec
	if err := decodeInto(obj, &next); err != nil {
		return domain.ScheduleSpec{}, err
	}
	if err := checkTargetName(next.Target); err != nil {
		return domain.ScheduleSpec{}, err
	}
	if err := next.Normalize(h.svc.TargetKnown); err != nil {
		return domain.ScheduleSpec{}, err
	}
	return next, nil
}

// checkTargetName refuses a target name that is not a safe slug
// (domain.ValidTargetName) before anything looks it up; empty means the
// default target.
func checkTargetName(name string) error {
	if name == "" || domain.ValidTargetName(name) {
		return nil
	}
	return badRequest(CodeValidationFailed, "target", "malformed target name %q: 1–%d letters, digits, _ or -, starting with a letter or digit",
		clip(name, 100), domain.MaxTargetNameLen)
}
