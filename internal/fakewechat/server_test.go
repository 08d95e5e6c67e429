package fakewechat

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

const (
	appID  = "wxfake0000000001"
	secret = "the-secret"
	tpl    = "TPL1"
)

type rig struct {
	t     *testing.T
	s     *Server
	url   string
	clock *testenv.Clock
}

func newRig(t *testing.T) *rig {
	clock := testenv.NewClock()
	clock.Set(time.Date(2026, 12, 3, 10, 0, 0, 0, shanghai))
	s := New(WithClock(clock.Now))
	s.AddApp(appID, secret)
	s.AddTemplate(appID, tpl, "thing1", "time2")
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &rig{t: t, s: s, url: srv.URL, clock: clock}
}

func (r *rig) get(path string, q url.Values) map[string]any {
	r.t.Helper()
	resp, err := http.Get(r.url + path + "?" + q.Encode())
	if err != nil {
		r.t.Fatal(err)
	}
	return decode(r.t, resp)
}

func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *rig) token() string {
	r.t.Helper()
	m := r.get("/cgi-bin/token", url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}})
	tok, _ := m["access_token"].(string)
	if tok == "" || m["expires_in"] != float64(7200) {
		r.t.Fatalf("token answer %v", m)
	}
	return tok
}

func (r *rig) send(tok string, body any) map[string]any {
	r.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(r.url+"/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(tok), "application/json", bytes.NewReader(b))
	if err != nil {
		r.t.Fatal(err)
	}
	return decode(r.t, resp)
}

func msg(openID string, data map[string]string) map[string]any {
	d := map[string]any{}
	for k, v := range data {
		d[k] = map[string]string{"value": v}
	}
	return map[string]any{"touser": openID, "template_id": tpl, "data": d, "miniprogram_state": "formal", "lang": "zh_CN"}
}

var good = map[string]string{"thing1": "您的津贴已发放", "time2": "2026年12月3日 10:00"}

func errcode(m map[string]any) int64 {
	c, _ := m["errcode"].(float64)
	return int64(c)
}

// The token endpoint refuses what WeChat refuses.
func TestTokenRefusals(t *testing.T) {
	r := newRig(t)
	for name, c := range map[string]struct {
		q    url.Values
		code int64
	}{
		"grant_type_40002": {url.Values{"grant_type": {"x"}, "appid": {appID}, "secret": {secret}}, 40002},
		"appid_40013":      {url.Values{"grant_type": {"client_credential"}, "appid": {"wxnope"}, "secret": {secret}}, 40013},
		"secret_40125":     {url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {"no"}}, 40125},
	} {
		t.Run(name, func(t *testing.T) {
			m := r.get("/cgi-bin/token", c.q)
			if errcode(m) != c.code || !strings.Contains(m["errmsg"].(string), " rid: ") {
				t.Fatalf("got %v, want %d", m, c.code)
			}
		})
	}
}

// Sends are refused in WeChat's order and with its codes.
func TestSendRefusals(t *testing.T) {
	r := newRig(t)
	tok := r.token()
	r.s.Accept(appID, "o-ok", tpl, false)
	r.s.AddUser(appID, "o-nosub")
	long := map[string]string{"thing1": strings.Repeat("长", 21), "time2": good["time2"]}
	cases := []struct {
		name string
		tok  string
		body map[string]any
		code int64
		msg  string
	}{
		{"token_missing_41001", "", msg("o-ok", good), 41001, ""},
		{"token_unknown_40001", "nope", msg("o-ok", good), 40001, ""},
		{"template_40037", tok, func() map[string]any { m := msg("o-ok", good); m["template_id"] = "X"; return m }(), 40037, ""},
		{"openid_40003", tok, msg("o-stranger", good), 40003, ""},
		{"thing_21_runes_47003", tok, msg("o-ok", long), 47003, "data.thing1.value invalid"},
		{"missing_key_47003", tok, msg("o-ok", map[string]string{"thing1": "x"}), 47003, "data.time2.value is empty"},
		{"extra_key_47003", tok, msg("o-ok", map[string]string{"thing1": "x", "time2": "10:00", "thing9": "y"}), 47003, "data.thing9"},
		{"bad_time_47003", tok, msg("o-ok", map[string]string{"thing1": "x", "time2": "tomorrow"}), 47003, "data.time2.value invalid"},
		{"not_subscribed_43101", tok, msg("o-nosub", good), 43101, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := r.send(c.tok, c.body)
			if errcode(m) != c.code || !strings.Contains(m["errmsg"].(string), c.msg) {
				t.Fatalf("got %v, want %d %q", m, c.code, c.msg)
			}
		})
	}
	if len(r.s.Messages()) != 0 {
		t.Fatal("a refused send was recorded")
	}
	if m := r.send(tok, msg("o-ok", good)); errcode(m) != 0 || m["msgid"] == nil {
		t.Fatalf("good send: %v", m)
	}
}

// Tokens expire after expires_in (42001), and a new one leaves the old five minutes.
func TestTokenLifetime(t *testing.T) {
	r := newRig(t)
	r.s.Accept(appID, "o-ok", tpl, false)
	first := r.token()
	r.clock.Advance(time.Hour)
	second := r.token()
	if m := r.send(first, msg("o-ok", good)); errcode(m) != 0 {
		t.Fatalf("the old token within its 5 minutes: %v", m)
	}
	r.clock.Advance(TokenOverlap)
	if m := r.send(first, msg("o-ok", good)); errcode(m) != 42001 {
		t.Fatalf("the old token after 5 minutes: %v", m)
	}
	r.clock.Advance(2 * time.Hour)
	if m := r.send(second, msg("o-ok", good)); errcode(m) != 42001 {
		t.Fatalf("after 2 hours: %v", m)
	}
}

// A one-time accept carries one message; accepts add up; long-term persists.
func TestSubscriptions(t *testing.T) {
	r := newRig(t)
	tok := r.token()
	r.s.Accept(appID, "o-once", tpl, true)
	r.s.Accept(appID, "o-once", tpl, true)
	for i, want := range []int64{0, 0, 43101} {
		if m := r.send(tok, msg("o-once", good)); errcode(m) != want {
			t.Fatalf("send %d: %v, want %d", i, m, want)
		}
	}
	r.s.Accept(appID, "o-long", tpl, false)
	for range 3 {
		if m := r.send(tok, msg("o-long", good)); errcode(m) != 0 {
			t.Fatalf("long-term: %v", m)
		}
	}
}

// The daily quota answers 45009 until midnight in China.
func TestQuota(t *testing.T) {
	r := newRig(t)
	r.s.SetQuota(appID, 2)
	r.s.Accept(appID, "o-ok", tpl, false)
	tok := r.token()
	for i, want := range []int64{0, 0, 45009, 45009} {
		if m := r.send(tok, msg("o-ok", good)); errcode(m) != want {
			t.Fatalf("send %d: %v, want %d", i, m, want)
		}
	}
	r.clock.Advance(14 * time.Hour) // past midnight
	if m := r.send(r.token(), msg("o-ok", good)); errcode(m) != 0 {
		t.Fatalf("the next day: %v", m)
	}
}

// Pages, when modelled, must be the app's.
func TestPages(t *testing.T) {
	r := newRig(t)
	r.s.SetPages(appID, "pages/notice/index")
	r.s.Accept(appID, "o-ok", tpl, false)
	tok := r.token()
	m := msg("o-ok", good)
	m["page"] = "pages/notice/index?id=1"
	if a := r.send(tok, m); errcode(a) != 0 {
		t.Fatalf("known page: %v", a)
	}
	m["page"] = "pages/elsewhere"
	if a := r.send(tok, m); errcode(a) != 41030 {
		t.Fatalf("unknown page: %v", a)
	}
}

// Login codes: one use, five minutes, this app only.
func TestCode2Session(t *testing.T) {
	r := newRig(t)
	q := func(code string) url.Values {
		return url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	}
	code := r.s.LoginCode(appID, "o-login")
	if m := r.get("/sns/jscode2session", q(code)); m["openid"] != "o-login" || m["session_key"] == "" {
		t.Fatalf("good: %v", m)
	}
	if m := r.get("/sns/jscode2session", q(code)); errcode(m) != 40163 {
		t.Fatalf("used: %v", m)
	}
	if m := r.get("/sns/jscode2session", q("made-up")); errcode(m) != 40029 {
		t.Fatalf("unknown: %v", m)
	}
	old := r.s.LoginCode(appID, "o-login")
	r.clock.Advance(CodeLife)
	if m := r.get("/sns/jscode2session", q(old)); errcode(m) != 40029 {
		t.Fatalf("expired: %v", m)
	}
	bad := q(r.s.LoginCode(appID, "o-login"))
	bad.Set("secret", "no")
	if m := r.get("/sns/jscode2session", bad); errcode(m) != 40125 {
		t.Fatalf("secret: %v", m)
	}
}

// Fail and Script answer in order, then the server serves as usual.
func TestScripts(t *testing.T) {
	r := newRig(t)
	r.s.Accept(appID, "o-ok", tpl, false)
	tok := r.token()
	r.s.Fail(1, Busy())
	r.s.Script("o-ok", QuotaReached(), Refused())
	for i, want := range []int64{-1, 45009, 43101, 0} {
		if m := r.send(tok, msg("o-ok", good)); errcode(m) != want {
			t.Fatalf("send %d: %v, want %d", i, m, want)
		}
	}
	r.s.Fail(1, HTML(http.StatusBadGateway))
	resp, err := http.Post(r.url+"/cgi-bin/message/subscribe/send?access_token="+tok, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("HTML reply: status %d", resp.StatusCode)
	}
}

// A body past MaxBody is 47001, not read whole.
func TestBodyBound(t *testing.T) {
	r := newRig(t)
	resp, err := http.Post(r.url+"/cgi-bin/message/subscribe/send?access_token="+r.token(), "application/json",
		strings.NewReader(`{"touser":"`+strings.Repeat("a", MaxBody)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m := decode(t, resp); errcode(m) != 47001 {
		t.Fatalf("got %v", m)
	}
}

// The dev handlers play the mini-program: login gives a code, accept a subscription, and the
// messages page shows what was sent with the openid masked.
func TestDevHandlers(t *testing.T) {
	r := newRig(t)
	dev := httptest.NewServer(r.s.DevHandler())
	defer dev.Close()
	post := func(path, body string) map[string]any {
		resp, err := http.Post(dev.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return decode(t, resp)
	}
	m := post("/dev/wechat/mp/login", `{"appid":"`+appID+`","openid":"o-dev-person-01"}`)
	if m["code"] == "" {
		t.Fatalf("login: %v", m)
	}
	post("/dev/wechat/mp/accept", `{"appid":"`+appID+`","openid":"o-dev-person-01","template":"`+tpl+`","one_time":true}`)
	if n, long := r.s.Subscriptions(appID, "o-dev-person-01", tpl); n != 1 || long {
		t.Fatalf("subscription %d %v", n, long)
	}
	resp, _ := http.Post(dev.URL+"/login", "application/json", strings.NewReader(`{"appid":"wxunknown","openid":"x"}`))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown app: %d", resp.StatusCode)
	}

	if a := r.send(r.token(), msg("o-dev-person-01", good)); errcode(a) != 0 {
		t.Fatal(a)
	}
	rec := httptest.NewRecorder()
	r.s.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/wechat/messages", nil))
	body, _ := io.ReadAll(rec.Body)
	var got []Message
	if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 {
		t.Fatalf("messages: %s", body)
	}
	if got[0].ToUser != "o-de…n-01" || got[0].Data["thing1"] != good["thing1"] {
		t.Fatalf("message %+v", got[0])
	}
}

func TestCheckValue(t *testing.T) {
	for _, c := range []struct {
		key, v string
		ok     bool
	}{
		{"thing1", strings.Repeat("字", 20), true},
		{"thing1", strings.Repeat("字", 21), false},
		{"thing1", "a\nb", false},
		{"phrase2", "配送中", true},
		{"phrase2", "配送中abc", false},
		{"number3", "12.5", true},
		{"number3", "12a", false},
		{"character_string4", "AB-12_x", true},
		{"character_string4", "中文", false},
		{"date5", "2019年10月1日", true},
		{"date5", "2019-10-01 15:01", true},
		{"time6", "15:01", true},
		{"time6", "2019年10月1日 15:01~16:00", true},
		{"time6", "25:01", false},
		{"name7", "张三", true},
		{"name7", strings.Repeat("张", 11), false},
		{"amount8", "¥100.50", true},
		{"car_number9", "粤A8Z888挂", true},
		{"phone_number10", "+86-0766-66888866", true},
		{"colour11", "red", false},
	} {
		if got := CheckValue(c.key, c.v); got != c.ok {
			t.Errorf("CheckValue(%s, %q) = %v, want %v", c.key, c.v, got, c.ok)
		}
	}
}
