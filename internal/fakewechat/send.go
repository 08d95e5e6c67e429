package fakewechat

import (
	"bytes"
	"encoding/json"

	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// sendRequest is subscribeMessage.send's body.
type sendRequest struct {
	ToUser     string                     `json:"touser"`
	TemplateID string                     `json:"template_id"`
	Page       string                     `json:"page"`
	Data       map[string]json.RawMessage `json:"data"`
	State      string                     `json:"miniprogram_state"`
	Lang       string                     `json:"lang"`
}

// shanghai is China's time: the quota day turns at its midnight.
var shanghai = time.FixedZone("Asia/Shanghai", 8*3600)

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeErr(w, 43002, "require POST method")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		writeErr(w, 47001, "data format error")
		return
	}
	tok := r.URL.Query().Get("access_token")

	s.mu.Lock()
	appID, code, msg := s.authenticate(tok)
	s.counts["send "+appID]++
	if code == 0 {
		code, msg = s.spendQuota(appID)
	}
	var reply Reply
	if code == 0 {
		reply, _ = s.replies.Next()
	}
	s.mu.Unlock()
	if code != 0 {
		writeErr(w, code, msg)
		return
	}
	if reply.set && reply.play(w, r) {
		return
	}

	var req sendRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		writeErr(w, 47001, "data format error")
		return
	}

	s.mu.Lock()
	reply, code, msg = s.judge(appID, &req)
	s.mu.Unlock()
	if reply.set {
		if reply.play(w, r) {
			return
		}
		s.mu.Lock()
		_, code, msg = s.judge(appID, &req)
		s.mu.Unlock()
	}
	if code != 0 {
		writeErr(w, code, msg)
		return
	}
	s.mu.Lock()
	id := s.deliver(appID, &req)
	s.mu.Unlock()
	writeJSON(w, struct {
		ErrCode int64  `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		MsgID   int64  `json:"msgid"`
	}{0, "ok", id})
}

// authenticate finds the app of an access token.
func (s *Server) authenticate(tok string) (string, int64, string) {
	if tok == "" {
		return "", 41001, "access_token missing"
	}
	t := s.tokens[tok]
	switch {
	case t == nil:
		return "", 40001, "invalid credential, access_token is invalid or not latest"
	case !s.now().Before(t.expires):
		return t.appID, 42001, "access_token expired"
	}
	return t.appID, 0, ""
}

// spendQuota counts one call against the app's day.
func (s *Server) spendQuota(appID string) (int64, string) {
	a := s.app(appID)
	if a.quota <= 0 {
		return 0, ""
	}
	day := s.now().In(shanghai).Format(time.DateOnly)
	if a.quotaDay != day {
		a.quotaDay, a.quotaUsed = day, 0
	}
	if a.quotaUsed >= a.quota {
		return 45009, "reach max api daily quota limit"
	}
	a.quotaUsed++
	return 0, ""
}

// judge runs WeChat's checks of a message, in order; a script for the openid comes in after
// the template and the openid are known. When it returns a scripted reply the caller plays it
// and, if that reply lets the request through, judges again without scripts.
func (s *Server) judge(appID string, req *sendRequest) (Reply, int64, string) {
	a := s.app(appID)
	keys, ok := a.templates[req.TemplateID]
	if !ok {
		return Reply{}, 40037, "invalid template_id"
	}
	if !a.openids[req.ToUser] {
		return Reply{}, 40003, "invalid openid"
	}
	if r, ok := s.replies.NextFor(req.ToUser); ok {
		return r, 0, ""
	}
	if req.Page != "" && a.pages != nil {
		path, _, _ := strings.Cut(req.Page, "?")
		if !a.pages[strings.TrimPrefix(path, "/")] {
			return Reply{}, 41030, "invalid page"
		}
	}
	switch req.State {
	case "", "formal", "trial", "developer":
	default:
		return Reply{}, 47003, "argument invalid! miniprogram_state invalid"
	}
	for _, k := range keys {
		raw, ok := req.Data[k]
		if !ok {
			return Reply{}, 47003, "argument invalid! data." + k + ".value is empty"
		}
		var item struct {
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(raw, &item); err != nil || item.Value == nil || *item.Value == "" {
			return Reply{}, 47003, "argument invalid! data." + k + ".value is empty"
		}
		if !CheckValue(k, *item.Value) {
			return Reply{}, 47003, "argument invalid! data." + k + ".value invalid"
		}
	}
	for k := range req.Data {
		if !slices.Contains(keys, k) {
			return Reply{}, 47003, "argument invalid! data." + k + " not in template"
		}
	}
	st := a.subs[subKey{req.ToUser, req.TemplateID}]
	switch {
	case st != nil && st.longTerm:
	case st != nil && st.oneTime > 0:
		st.oneTime-- // the send uses the accept up, as WeChat's one-time subscriptions do
	default:
		return Reply{}, 43101, "user refuse to accept the msg"
	}
	return Reply{}, 0, ""
}

func (s *Server) deliver(appID string, req *sendRequest) int64 {
	s.seq++
	data := make(map[string]string, len(req.Data))
	for k, raw := range req.Data {
		var item struct {
			Value string `json:"value"`
		}
		_ = json.Unmarshal(raw, &item)
		data[k] = item.Value
	}
	m := Message{
		MsgID: 2000000000 + s.seq, AppID: appID, ToUser: req.ToUser, TemplateID: req.TemplateID,
		Page: req.Page, State: req.State, Lang: req.Lang, Data: data, At: s.now(),
	}
	s.messages.Add(m)
	return m.MsgID
}
