package fakewechat

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/tongban/tongban/internal/fakevendor"
)

// MessagesHandler serves GET with the accepted messages as a JSON array, newest first, for dev
// mode's /dev/wechat/messages. Openids are masked: the page shows what was sent, not to whom.
func (s *Server) MessagesHandler() http.Handler {
	return fakevendor.JSONView(func() any {
		msgs := s.Messages()
		for i := range msgs {
			msgs[i].ToUser = mask(msgs[i].ToUser)
		}
		return msgs
	}, writeJSON)
}

// DevHandler serves what the mini-program side does, for dev mode's pages: POST …/login
// {"appid","openid"} answers {"code"} (wx.login), and POST …/accept {"appid","openid",
// "template","one_time"} records a subscription (wx.requestSubscribeMessage). Bodies are JSON
// or a form, at most MaxBody. Paths match on their ending, so it mounts anywhere.
func (s *Server) DevHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var in struct {
			AppID    string `json:"appid"`
			OpenID   string `json:"openid"`
			Template string `json:"template"`
			OneTime  bool   `json:"one_time"`
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			body, err := io.ReadAll(r.Body)
			if err != nil || json.Unmarshal(body, &in) != nil {
				http.Error(w, "bad JSON body", http.StatusBadRequest)
				return
			}
		} else {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			in.AppID, in.OpenID, in.Template = r.PostForm.Get("appid"), r.PostForm.Get("openid"), r.PostForm.Get("template")
			in.OneTime = r.PostForm.Get("one_time") == "true" || r.PostForm.Get("one_time") == "1"
		}
		if in.AppID == "" || in.OpenID == "" || len(in.OpenID) > 128 || len(in.AppID) > 64 {
			http.Error(w, "appid and openid (≤ 128 characters) are required", http.StatusBadRequest)
			return
		}
		if !s.devAllowed(in.AppID, in.OpenID) {
			http.Error(w, "unknown appid, or too many people in this app", http.StatusBadRequest)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/login"):
			code := s.LoginCode(in.AppID, in.OpenID)
			if code == "" {
				http.Error(w, "too many live login codes", http.StatusServiceUnavailable)
				return
			}
			writeJSON(w, map[string]string{"code": code})
		case strings.HasSuffix(r.URL.Path, "/accept"):
			if in.Template == "" || len(in.Template) > 128 {
				http.Error(w, "template is required", http.StatusBadRequest)
				return
			}
			s.Accept(in.AppID, in.OpenID, in.Template, in.OneTime)
			writeJSON(w, map[string]bool{"ok": true})
		default:
			http.NotFound(w, r)
		}
	})
}

// MaxUsers bounds the openids DevHandler lets one app gather.
const MaxUsers = 10000

// devAllowed lets the dev pages act only for apps the server has, and within MaxUsers.
func (s *Server) devAllowed(appID, openID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	return a != nil && (a.openids[openID] || len(a.openids) < MaxUsers)
}
