package starter

import (
	"bytes"
	"errors"
	"testing"

	"github.com/themis-maintenance/themis/domain"
)

// FuzzDecodePageToken: any string is either refused with a
// *domain.ValidationError of field next_page_token (never a panic, never
// another error) or is a token EncodePageToken made for that query, whose
// page position round-trips.
//
//	go test ./starter -run '^$' -fuzz FuzzDecodePageToken -fuzztime 30s
func FuzzDecodePageToken(f *testing.F) {
	const query = `WorkflowType = "MaintenanceJobWorkflow"`
	for _, s := range []string{"", "x", "AAAA", "AAAAAAAAAAAAAAAAAAAA", "%00", "....", "_-_-_-_-_-_-",
		EncodePageToken(query, []byte("position-1")), EncodePageToken("other", []byte("p")), EncodePageToken(query, nil)} {
		f.Add(query, s)
	}
	f.Fuzz(func(t *testing.T, q, token string) {
		raw, err := DecodePageToken(q, token)
		if err != nil {
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != "next_page_token" || raw != nil {
				t.Fatalf("%q: %v (%T)", token, err, err)
			}
			return
		}
		if len(raw) == 0 {
			t.Fatalf("%q: accepted with an empty position", token)
		}
		if again := EncodePageToken(q, raw); again != token {
			// Only a canonical encoding of a check+position is accepted.
			back, err := DecodePageToken(q, again)
			if err != nil || !bytes.Equal(back, raw) {
				t.Fatalf("%q: round trip %q: %v", token, again, err)
			}
		}
	})
}
