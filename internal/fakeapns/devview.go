package fakeapns

import (
	"net/http"
	"strings"

	"github.com/tongban/tongban/internal/fakevendor"
)

// MessagesHandler serves GET with the accepted notifications as a JSON array, newest first,
// for dev mode's /dev/apns/messages. Device tokens are masked (MaskToken): the page is for
// seeing what was pushed, and a full token is enough to push to that device.
func (s *Server) MessagesHandler() http.Handler {
	return fakevendor.JSONView(func() any {
		msgs := s.Messages()
		for i := range msgs {
			msgs[i].Token = MaskToken(msgs[i].Token)
		}
		return msgs
	}, func(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) })
}

// MaskToken keeps the first 6 and last 4 characters of a device token, enough to tell devices
// apart and too little to push to one. Tokens too short for that are masked whole.
func MaskToken(token string) string {
	if token == "" {
		return ""
	}
	if len(token) < 16 {
		return "…"
	}
	// Device tokens are hex; a token that is not is cut by bytes all the same, and
	// ToValidUTF8 keeps the answer JSON-clean.
	return strings.ToValidUTF8(token[:6], "") + "…" + strings.ToValidUTF8(token[len(token)-4:], "")
}
