package fakehms

import (
	"net/http"
	"unicode/utf8"

	"github.com/tongban/tongban/internal/fakevendor"
)

// MessagesHandler serves GET with the accepted messages as a JSON array, newest first, for dev
// mode's /dev/hms/messages. Tokens are masked (MaskToken): the page is for seeing what was
// pushed, and a full token is enough to push to that device.
func (s *Server) MessagesHandler() http.Handler {
	return fakevendor.JSONView(func() any {
		msgs := s.Messages()
		for i := range msgs {
			msgs[i].Token = MaskToken(msgs[i].Token)
		}
		return msgs
	}, func(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) })
}

// MaskToken keeps the first 6 and last 4 characters of a token, enough to tell devices apart
// and too little to push to one. Tokens too short for that are masked whole.
func MaskToken(token string) string {
	if token == "" {
		return ""
	}
	if utf8.RuneCountInString(token) < 16 {
		return "…"
	}
	r := []rune(token)
	return string(r[:6]) + "…" + string(r[len(r)-4:])
}
