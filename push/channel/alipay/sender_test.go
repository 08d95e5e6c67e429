package alipay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakealipay"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/alipay"
)

// TestSendOutcomes runs each of Alipay's answers through the real SDK against the fake and
// checks the outcome delivery gets.
func TestSendOutcomes(t *testing.T) {
	cases := []struct {
		name    string
		arrange func(e *env)
		want    channel.Result
	}{
		{"sent", func(e *env) { e.fake.Subscribe(appID, user, tpl, false) },
			channel.Result{Outcome: channel.Sent}},
		{"USER_NOT_SUBSCRIBED drops", func(e *env) {},
			channel.Result{Outcome: channel.Drop, Reason: "USER_NOT_SUBSCRIBED"}},
		{"unsubscribed drops", func(e *env) {
			e.fake.Subscribe(appID, user, tpl, false)
			e.fake.Unsubscribe(appID, user, tpl)
		}, channel.Result{Outcome: channel.Drop, Reason: "USER_NOT_SUBSCRIBED"}},
		{"USER_TEMPLATE_ILLEGAL fails", func(e *env) {
			e.fake.Script(user, fakealipay.Answer("40004", "Business Failed", "USER_TEMPLATE_ILLEGAL", "模板不合法"))
		}, channel.Result{Outcome: channel.Fail, Reason: "USER_TEMPLATE_ILLEGAL"}},
		{"DATA_ILLEGAL fails", func(e *env) {
			e.fake.Subscribe(appID, user, tpl, false)
			e.fake.AddTemplate(appID, tpl, "keyword1:4", "keyword2", "keyword3") // service name is longer
		}, channel.Result{Outcome: channel.Fail, Reason: "DATA_ILLEGAL"}},
		{"invalid parameters fail", func(e *env) {
			e.fake.Script(user, fakealipay.Answer("40002", "Invalid Arguments", "isv.invalid-parameter", "参数无效"))
		}, channel.Result{Outcome: channel.Fail, Reason: "isv.invalid-parameter"}},
		{"insufficient permissions wait for the operator", func(e *env) {
			e.fake.Script(user, fakealipay.Answer("40006", "Insufficient Permissions", "isv.insufficient-isv-permissions", "ISV权限不足"))
		}, channel.Result{Outcome: channel.Retry, Wait: max(retryW, time.Minute), Reason: "isv.insufficient-isv-permissions"}},
		{"auth waits for the operator", func(e *env) {
			e.fake.Script(user, fakealipay.Answer("20001", "Insufficient Token Permissions", "aop.invalid-auth-token", "无效的访问令牌"))
		}, channel.Result{Outcome: channel.Retry, Wait: max(retryW, time.Minute), Reason: "aop.invalid-auth-token"}},
		{"isp.unknow-error retries", func(e *env) { e.fake.Script(user, fakealipay.SystemError()) },
			channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: "isp.unknow-error"}},
		{"20000 without sub_code retries", func(e *env) {
			e.fake.Script(user, fakealipay.Answer("20000", "Service Currently Unavailable", "", ""))
		}, channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: "20000"}},
		{"SYSTEM_ERROR retries", func(e *env) {
			e.fake.Script(user, fakealipay.Answer("40004", "Business Failed", "ACQ.SYSTEM_ERROR", "系统错误"))
		}, channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: "ACQ.SYSTEM_ERROR"}},
		{"call limited waits for the quota", func(e *env) { e.fake.Script(user, fakealipay.CallLimited()) },
			channel.Result{Outcome: channel.Retry, Wait: quotaW, Reason: "isv.app-call-limited"}},
		{"too frequent waits for the quota", func(e *env) {
			e.fake.Script(user, fakealipay.Answer("40004", "Business Failed", "SEND_FREQUENCY_LIMIT", "发送过于频繁"))
		}, channel.Result{Outcome: channel.Retry, Wait: quotaW, Reason: "SEND_FREQUENCY_LIMIT"}},
		{"app quota waits for the quota", func(e *env) {
			e.fake.Subscribe(appID, user, tpl, false)
			e.fake.SetQuota(appID, 1, 3600e9)
			e.fake.Subscribe(appID, "2088000000000001", tpl, false)
			e.send(t, msg("2088000000000001")) // uses the quota
		}, channel.Result{Outcome: channel.Retry, Wait: quotaW, Reason: "isv.app-call-limited"}},
		{"bad signature retries", func(e *env) {
			e.fake.Subscribe(appID, user, tpl, false)
			e.fake.Script(user, fakealipay.BadSignature())
		}, channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: alipay.ReasonBadSignature}},
		{"proxy page retries", func(e *env) { e.fake.Script(user, fakealipay.Garbled("<html>502 Bad Gateway</html>")) },
			channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: alipay.ReasonBadAnswer}},
		{"empty body retries", func(e *env) { e.fake.Script(user, fakealipay.Garbled("")) },
			channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: alipay.ReasonBadAnswer}},
		{"JSON without the response retries", func(e *env) { e.fake.Script(user, fakealipay.Garbled(`{"sign":"x"}`)) },
			channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: alipay.ReasonBadAnswer}},
		{"unsigned success is not believed", func(e *env) {
			e.fake.Script(user, fakealipay.Garbled(`{"alipay_open_app_mini_templatemessage_send_response":{"code":"10000","msg":"Success"}}`))
		}, channel.Result{Outcome: channel.Retry, Wait: retryW, Reason: alipay.ReasonBadSignature}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t)
			c.arrange(e)
			got := e.send(t, msg(user))
			if len(got) != 1 || got[0] != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestTemplateAlipayDoesNotKnow: a template id the mini-program does not have at Alipay is
// refused by Alipay, not by us.
func TestTemplateAlipayDoesNotKnow(t *testing.T) {
	e := setup(t, func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].TemplateID = "not-at-alipay" })
	m := msg(user)
	m.To.Template = "not-at-alipay"
	got := e.send(t, m)[0]
	if got.Outcome != channel.Fail || got.Reason != "USER_TEMPLATE_ILLEGAL" {
		t.Fatalf("got %+v", got)
	}
}

func TestSendOutcomesOfOurOwn(t *testing.T) {
	e := setup(t)
	m := msg(user)
	unknownApp, noAddr, noTpl := m, m, m
	unknownApp.To.App = "other"
	noAddr.To.Address = ""
	noTpl.To.Template = "nope"
	got := e.send(t, unknownApp, noAddr, noTpl)
	want := []string{alipay.ReasonUnknownApp, alipay.ReasonNoAddress, alipay.ReasonNoTemplate}
	for i, r := range got {
		if r.Outcome != channel.Fail || r.Reason != want[i] {
			t.Errorf("%d: got %+v, want fail %s", i, r, want[i])
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests reached the gateway", n)
	}
}

func TestSendTransport(t *testing.T) {
	e := setup(t)
	e.srv.Close()
	got := e.send(t, msg(user))
	if got[0].Outcome != channel.Retry || got[0].Reason != alipay.ReasonTransport {
		t.Fatalf("got %+v", got[0])
	}
}

func TestSendTimeoutPerMessage(t *testing.T) {
	e := setup(t, func(o *alipay.Options) { o.Timeout = 50e6 })
	e.fake.Subscribe(appID, user, tpl, false)
	e.fake.Script(user, fakealipay.Slow(10e9))
	got := e.send(t, msg(user))
	if got[0].Outcome != channel.Retry || got[0].Reason != alipay.ReasonTransport {
		t.Fatalf("got %+v", got[0])
	}
}

func TestSendWhatArrives(t *testing.T) {
	e := setup(t)
	e.fake.Subscribe(appID, user, tpl, false)
	if got := e.send(t, msg(user)); got[0].Outcome != channel.Sent {
		t.Fatalf("got %+v", got[0])
	}
	ms := e.fake.Messages()
	if len(ms) != 1 {
		t.Fatalf("%d messages", len(ms))
	}
	m := ms[0]
	if m.ToUserID != user || m.TemplateID != tpl || m.Page != "pages/notice/index?id=n1" {
		t.Errorf("got %+v", m)
	}
	want := map[string]string{"keyword1": "城乡居民养老保险待遇", "keyword2": "您的待遇已发放", "keyword3": "2026-12-03"}
	for k, v := range want {
		if m.Data[k] != v {
			t.Errorf("%s = %q, want %q", k, m.Data[k], v)
		}
	}
}

// TestOneTimeSubscription: a one-time subscription carries one message; the next is dropped.
func TestOneTimeSubscription(t *testing.T) {
	e := setup(t)
	e.fake.Subscribe(appID, user, tpl, true)
	first, second := e.send(t, msg(user))[0], e.send(t, msg(user))[0]
	if first.Outcome != channel.Sent {
		t.Fatalf("first: %+v", first)
	}
	if second.Outcome != channel.Drop || second.Reason != "USER_NOT_SUBSCRIBED" {
		t.Fatalf("second: %+v", second)
	}
}

// TestLongTermSubscription: a long-term subscription carries every message.
func TestLongTermSubscription(t *testing.T) {
	e := setup(t)
	e.fake.Subscribe(appID, user, tpl, false)
	for i := range 2 {
		if r := e.send(t, msg(user))[0]; r.Outcome != channel.Sent {
			t.Fatalf("send %d: %+v", i, r)
		}
	}
	if ok, _ := e.fake.Subscribed(appID, user, tpl); !ok {
		t.Fatal("subscription gone")
	}
}

// TestRequestSignedWithAnotherKey: a request the gateway cannot verify is refused as Alipay
// refuses it (40002 isv.invalid-signature); the message waits for the operator to fix the key.
func TestRequestSignedWithAnotherKey(t *testing.T) {
	e := setup(t, func(o *alipay.Options) { o.MiniPrograms[0].PrivateKey = otherKey(t) })
	e.fake.Subscribe(appID, user, tpl, false)
	got := e.send(t, msg(user))[0]
	if got.Outcome != channel.Retry || got.Wait < time.Minute || got.Reason != "isv.invalid-signature" {
		t.Fatalf("got %+v", got)
	}
	if a := e.fake.Requests(); len(a) != 1 || a[0].Code != "40002" || a[0].SubCode != "isv.invalid-signature" {
		t.Fatalf("attempts %+v", a)
	}
	if len(e.fake.Messages()) != 0 {
		t.Fatal("message accepted")
	}
	_, err := e.sender.Exchange(t.Context(), app, e.fake.LoginCode(appID, user))
	if err == nil || errors.As(err, new(*channel.InputError)) {
		t.Fatalf("exchange: %v, want an error that is not the caller's", err)
	}
}

func TestSendManyConcurrently(t *testing.T) {
	e := setup(t, func(o *alipay.Options) { o.Concurrency = 4 })
	var msgs []channel.Message
	for i := range 40 {
		u := "20880000000" + strings.Repeat("0", 3) + string(rune('0'+i/10)) + string(rune('0'+i%10))
		e.fake.Subscribe(appID, u, tpl, false)
		msgs = append(msgs, msg(u))
	}
	msgs = append(msgs, msg(user)) // not subscribed
	got := e.send(t, msgs...)
	for i, r := range got[:40] {
		if r.Outcome != channel.Sent {
			t.Fatalf("%d: %+v", i, r)
		}
	}
	if got[40].Outcome != channel.Drop {
		t.Fatalf("last: %+v", got[40])
	}
}

func TestSendCancelled(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got := e.sender.Send(ctx, []channel.Message{msg(user), msg(user)})
	for _, r := range got {
		if r.Outcome != channel.Retry {
			t.Fatalf("got %+v", r)
		}
	}
}

func TestTemplates(t *testing.T) {
	e := setup(t)
	if id, ok := e.sender.Template(app, cat); !ok || id != tpl {
		t.Errorf("got %q %v", id, ok)
	}
	if _, ok := e.sender.Template(app, "other"); ok {
		t.Error("other category has a template")
	}
	if _, ok := e.sender.Template("other", cat); ok {
		t.Error("other app has a template")
	}
	if e.sender.Kind() != channel.Alipay || e.sender.Batch() <= 0 {
		t.Error("kind or batch")
	}
}
