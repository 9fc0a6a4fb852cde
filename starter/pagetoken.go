package starter

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"

	"github.com/themis-maintenance/themis/domain"
)

// pageTokenCheckLen is the length of the check a page token starts with.
const pageTokenCheckLen = 8

// EncodePageToken wraps the page position raw (Temporal's visibility token)
// into the opaque next_page_token of the listing query: base64url of a
// check (a hash of query and raw) followed by raw. The check lets
// DecodePageToken refuse a token the service did not issue for this query
// at once: Temporal does not refuse a garbled token, it retries it until
// the call times out.
func EncodePageToken(query string, raw []byte) string {
	return base64.RawURLEncoding.EncodeToString(append(pageTokenCheck(query, raw), raw...))
}

// DecodePageToken returns the page position of a next_page_token that
// EncodePageToken made for the same query; anything else is a
// *domain.ValidationError of field next_page_token.
func DecodePageToken(query, token string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil && len(b) > pageTokenCheckLen {
		raw := b[pageTokenCheckLen:]
		if bytes.Equal(b[:pageTokenCheckLen], pageTokenCheck(query, raw)) {
			return raw, nil
		}
	}
	return nil, &domain.ValidationError{Field: "next_page_token",
		Message: "not a page token of this listing: pass the next_page_token of the previous page, with the same filters"}
}

func pageTokenCheck(query string, raw []byte) []byte {
	h := sha256.New()
	h.Write([]byte(query))
	h.Write([]byte{0})
	h.Write(raw)
	return h.Sum(nil)[:pageTokenCheckLen]
}
