package fakealipay

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tongban/tongban/internal/fakevendor"
)

// MessagesHandler serves GET with the accepted messages as a JSON array, newest first, for dev
// mode's /dev/alipay/messages. User ids and open_ids are masked (Mask): the page is for seeing
// what was sent, not for collecting ids.
func (s *Server) MessagesHandler() http.Handler {
	return fakevendor.JSONView(func() any {
		msgs := s.Messages()
		for i := range msgs {
			msgs[i].ToUserID, msgs[i].ToOpenID = Mask(msgs[i].ToUserID), Mask(msgs[i].ToOpenID)
		}
		return msgs
	}, func(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) })
}

// DevHandler serves what the Alipay client would do for a dev page, mounted anywhere:
//
//	POST …/login      {"appId", "userId"}                          → {"code": "<login code>"}
//	POST …/subscribe  {"appId", "userId", "templateId", "oneTime"} → 204
//
// login stands for my.getAuthCode, subscribe for the user agreeing in
// my.requestSubscribeMessage.
func (s *Server) DevHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var in struct {
			AppID      string `json:"appId"`
			UserID     string `json:"userId"`
			TemplateID string `json:"templateId"`
			OneTime    bool   `json:"oneTime"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil ||
			in.AppID == "" || in.UserID == "" {
			http.Error(w, "want JSON with appId and userId", http.StatusBadRequest)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/login"):
			writeJSON(w, http.StatusOK, map[string]string{"code": s.LoginCode(in.AppID, in.UserID)})
		case strings.HasSuffix(r.URL.Path, "/subscribe"):
			if in.TemplateID == "" {
				http.Error(w, "want templateId", http.StatusBadRequest)
				return
			}
			s.Subscribe(in.AppID, in.UserID, in.TemplateID, in.OneTime)
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	})
}

// Mask keeps the first 4 and last 4 characters of an id; ids too short for that are masked whole.
func Mask(id string) string {
	if id == "" {
		return ""
	}
	if utf8.RuneCountInString(id) < 12 {
		return "…"
	}
	r := []rune(id)
	return string(r[:4]) + "…" + string(r[len(r)-4:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
