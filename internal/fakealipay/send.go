package fakealipay

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The send's documented maximum lengths (opendocs, alipay.open.app.mini.templatemessage.send:
// to_user_id 28, user_template_id 64, page 128, data 2048), counted in characters.
const (
	MaxUserID     = 28
	MaxOpenID     = 128 // not documented with the field; open_ids seen are ~50 characters
	MaxTemplateID = 64
	MaxPage       = 128
	MaxData       = 2048
	// MaxValue is a keyword value's bound when AddTemplate names none. Alipay's console shows
	// each keyword's limit with the template; 20 characters is the common one.
	MaxValue = 20
)

type template struct {
	keywords map[string]int // keyword → max runes
}

// AddTemplate makes templateID a subscription template of appID's mini-program with the given
// keywords, each "name" (at most MaxValue characters) or "name:max". A send must fill exactly
// these keywords, each within its bound.
func (s *Server) AddTemplate(appID, templateID string, keywords ...string) {
	t := template{keywords: make(map[string]int, len(keywords))}
	for _, k := range keywords {
		name, max, ok := strings.Cut(k, ":")
		n, err := strconv.Atoi(max)
		if !ok || err != nil || n <= 0 {
			n = MaxValue
		}
		t.keywords[name] = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a == nil {
		a = &app{templates: make(map[string]template)}
		s.apps[appID] = a
	}
	a.templates[templateID] = t
}

// Subscribe records that userID agreed (my.requestSubscribeMessage) to templateID in appID:
// oneTime is consumed by the next message sent with it; otherwise it lasts until Unsubscribe.
func (s *Server) Subscribe(appID, userID, templateID string, oneTime bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[subKey{appID, userID, templateID}] = oneTime
}

// Unsubscribe removes the subscription, as a user switching it off in Alipay's settings does.
func (s *Server) Unsubscribe(appID, userID, templateID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs, subKey{appID, userID, templateID})
}

// Subscribed reports whether the subscription is there and whether it is one-time.
func (s *Server) Subscribed(appID, userID, templateID string) (ok, oneTime bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	oneTime, ok = s.subs[subKey{appID, userID, templateID}]
	return ok, oneTime
}

type sendBiz struct {
	ToUserID       string `json:"to_user_id"`
	ToOpenID       string `json:"to_open_id"`
	UserTemplateID string `json:"user_template_id"`
	Page           string `json:"page"`
	Data           string `json:"data"`
	FormID         string `json:"form_id"`
}

// send runs the send's checks: parameters, template, data against the template's keywords,
// the user's subscription, then the app's quota; a scripted reply for the user comes once the
// user is known.
func (s *Server) send(r *http.Request, appID, bizContent string) (answer, Reply) {
	var b sendBiz
	if err := json.Unmarshal([]byte(bizContent), &b); err != nil {
		return invalid("isv.invalid-parameter", "biz_content参数无效"), Reply{}
	}
	user := b.ToUserID
	switch {
	case b.ToUserID == "" && b.ToOpenID == "":
		return missing("isv.missing-parameter", "缺少必选参数to_user_id"), Reply{}
	case b.ToUserID != "" && (utf8.RuneCountInString(b.ToUserID) > MaxUserID || !digits(b.ToUserID)):
		return invalid("isv.invalid-parameter", "参数to_user_id无效"), Reply{}
	case b.ToUserID == "" && utf8.RuneCountInString(b.ToOpenID) > MaxOpenID:
		return invalid("isv.invalid-parameter", "参数to_open_id无效"), Reply{}
	case b.UserTemplateID == "" || utf8.RuneCountInString(b.UserTemplateID) > MaxTemplateID:
		return invalid("isv.invalid-parameter", "参数user_template_id无效"), Reply{}
	case b.Page == "" || utf8.RuneCountInString(b.Page) > MaxPage:
		return business("PAGE_ILLEGAL", "page参数不合法"), Reply{}
	case b.Data == "" || utf8.RuneCountInString(b.Data) > MaxData:
		return business("DATA_ILLEGAL", "data参数不合法"), Reply{}
	}
	if user == "" {
		user = s.userOfOpenID(appID, b.ToOpenID)
	}
	if reply := s.play(r, s.popScript(user)); reply.refuses() || reply.raw != nil {
		return reply.answer(), reply
	} else if reply.badSign {
		ans, _ := s.deliver(appID, user, b)
		return ans, reply
	}
	return s.deliver(appID, user, b)
}

func (s *Server) deliver(appID, user string, b sendBiz) (answer, Reply) {
	data, ok := parseData(b.Data)
	if !ok {
		return business("DATA_ILLEGAL", "data参数不合法"), Reply{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	t, ok := a.templates[b.UserTemplateID]
	if !ok {
		return business("USER_TEMPLATE_ILLEGAL", "模板不合法"), Reply{}
	}
	for k, max := range t.keywords {
		v, ok := data[k]
		if !ok || utf8.RuneCountInString(v) > max {
			return business("DATA_ILLEGAL", "data参数不合法: "+k), Reply{}
		}
	}
	for k := range data {
		if _, ok := t.keywords[k]; !ok {
			return business("DATA_ILLEGAL", "data参数不合法: "+k), Reply{}
		}
	}
	if user == "" {
		return business("USER_NOT_EXIST", "用户不存在"), Reply{}
	}
	key := subKey{appID, user, b.UserTemplateID}
	oneTime, ok := s.subs[key]
	if !ok {
		return business("USER_NOT_SUBSCRIBED", "用户未订阅该模板"), Reply{}
	}
	now := s.now()
	if a.quota > 0 {
		if now.Sub(a.winStart) >= a.window {
			a.winStart, a.used = now, 0
		}
		if a.used >= a.quota {
			return CallLimited().answer(), Reply{}
		}
		a.used++
	}
	if oneTime {
		delete(s.subs, key)
	}
	s.seq++
	id := fmt.Sprintf("%d%08d", now.UnixMilli(), s.seq)
	s.received.Add(Received{ID: id, AppID: appID, ToUserID: b.ToUserID, ToOpenID: b.ToOpenID,
		TemplateID: b.UserTemplateID, Page: b.Page, Data: data, OneTime: oneTime, ReceivedAt: now})
	return success(nil), Reply{}
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// userOfOpenID finds the user behind an open_id among those the fake has seen for appID (codes,
// subscriptions); "" when none.
func (s *Server) userOfOpenID(appID, openID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.subs {
		if k.app == appID && OpenID(appID, k.user) == openID {
			return k.user
		}
	}
	return ""
}

// parseData reads the send's data parameter: a JSON object of keyword → {"value": string}.
func parseData(s string) (map[string]string, bool) {
	var raw map[string]struct {
		Value *string `json:"value"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil || len(raw) == 0 {
		return nil, false
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if v.Value == nil {
			return nil, false
		}
		out[k] = *v.Value
	}
	return out, true
}
