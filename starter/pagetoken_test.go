package starter

import (
	"errors"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

func TestPageTokenRoundTripAndRefusals(t *testing.T) {
	const q = "WorkflowType = 'x'"
	raw := []byte(`{"CloseTime":"2026-01-01T00:00:00Z","RunID":"r"}`)
	tok := EncodePageToken(q, raw)
	got, err := DecodePageToken(q, tok)
	if err != nil || string(got) != string(raw) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	flipped := []byte(tok)
	flipped[len(flipped)-2] ^= 1
	for name, c := range map[string]struct{ query, token string }{
		"valid base64, not a token": {q, "abcd"},
		"not base64":                {q, "!!!"},
		"another query's token":     {q + " AND ExecutionStatus = 'Running'", tok},
		"a changed token":           {q, string(flipped)},
		"the check alone":           {q, EncodePageToken(q, nil)},
	} {
		_, err := DecodePageToken(c.query, c.token)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != "next_page_token" {
			t.Errorf("%s: %v, want a validation error of next_page_token", name, err)
		}
	}
}
