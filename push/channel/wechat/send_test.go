package wechat

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakewechat"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/channel"
)

// Each answer of WeChat's, through the real SDK against the fake, comes to its outcome.
func TestSendOutcomeByReason(t *testing.T) {
	quotaWait := 9*time.Hour - 4*time.Minute // 15:04 in China → midnight
	cases := []struct {
		name    string
		reply   fakewechat.Reply
		outcome channel.Outcome
		reason  string
		wait    time.Duration
	}{
		{"sent", fakewechat.Reply{}, channel.Sent, "", 0},
		{"refused_43101", fakewechat.Refused(), channel.Drop, "43101", 0},
		{"bad_openid_40003", fakewechat.InvalidOpenID(), channel.Drop, "40003", 0},
		{"quota_45009", fakewechat.QuotaReached(), channel.Retry, "45009", quotaWait},
		{"busy_-1", fakewechat.Busy(), channel.Retry, "-1", time.Second},
		{"template_data_47003", fakewechat.InvalidData("thing1"), channel.Fail, "47003", 0},
		{"template_id_40037", fakewechat.InvalidTemplate(), channel.Fail, "40037", 0},
		{"page_41030", fakewechat.InvalidPage(), channel.Fail, "41030", 0},
		{"unknown_code", fakewechat.Errcode(48001, "api unauthorized"), channel.Retry, "48001", 0},
		{"proxy_html_502", fakewechat.HTML(http.StatusBadGateway), channel.Retry, "transport", 0},
		{"html_200_bad_answer", fakewechat.Garbage(), channel.Retry, "bad_answer", 0},
		{"empty_200_bad_answer", fakewechat.Empty(), channel.Retry, "bad_answer", 0},
		{"json_without_errcode_bad_answer", fakewechat.Raw(http.StatusOK, "application/json", "{}"), channel.Retry, "bad_answer", 0},
		{"json_null_bad_answer", fakewechat.Raw(http.StatusOK, "application/json", "null"), channel.Retry, "bad_answer", 0},
		{"errcode_not_a_number_bad_answer", fakewechat.Raw(http.StatusOK, "application/json", `{"errcode":"0"}`), channel.Retry, "bad_answer", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, nil)
			m := w.subscriber("o-person-0000001", false)
			if c.reply != (fakewechat.Reply{}) {
				w.fake.Script("o-person-0000001", c.reply)
			}
			got := w.sendOne(m)
			if got.Outcome != c.outcome || got.Reason != c.reason || got.Wait != c.wait {
				t.Fatalf("got %v %q wait %v, want %v %q wait %v", got.Outcome, got.Reason, got.Wait, c.outcome, c.reason, c.wait)
			}
			if c.outcome == channel.Sent && len(w.fake.Messages()) != 1 {
				t.Fatalf("the fake accepted %d messages, want 1", len(w.fake.Messages()))
			}
			w.noSecrets("o-person-0000001")
		})
	}
}

// A 47003 is logged with the key WeChat names and without the value.
func TestSendTemplateDataLogsTheKey(t *testing.T) {
	w := newWorld(t, nil)
	m := w.subscriber("o-person-0000002", false)
	w.fake.Script("o-person-0000002", fakewechat.Errcode(47003, "argument invalid! data.thing2.value invalid rid: 1-2"))
	if r := w.sendOne(m); r.Outcome != channel.Fail {
		t.Fatalf("got %+v, want Fail", r)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "key=thing2") || strings.Contains(logs, m.Note.Title) {
		t.Fatalf("logs should name thing2 and not the value:\n%s", logs)
	}
}

// The message WeChat receives: each key fitted to its type, the page with the notice's id,
// the date in China's time.
func TestSendRendersTheMessage(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.MiniPrograms[0].State = "trial" })
	m := w.subscriber("o-person-0000003", true)
	m.Note.Title = "关于2026年度城乡居民基本医疗保险个人缴费补贴发放的通知"
	if r := w.sendOne(m); r.Outcome != channel.Sent {
		t.Fatalf("got %+v", r)
	}
	got := w.fake.Messages()[0]
	want := map[string]string{
		"thing1":  "关于2026年度城乡居民基本医疗保险个…",
		"thing2":  "杭州市高龄津贴",
		"time3":   "2026年12月3日 15:04",
		"phrase4": "待领取",
	}
	for k, v := range want {
		if got.Data[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Data[k], v)
		}
	}
	if got.Page != "pages/notice/index?id=n-1" || got.State != "trial" || got.TemplateID != testTpl {
		t.Errorf("page %q state %q template %q", got.Page, got.State, got.TemplateID)
	}
}

// A one-time subscription carries one message; the next is 43101 and the subscription goes.
func TestSendOneTimeSubscriptionUsedUp(t *testing.T) {
	w := newWorld(t, nil)
	m := w.subscriber("o-person-0000004", true)
	if r := w.sendOne(m); r.Outcome != channel.Sent {
		t.Fatalf("first: %+v", r)
	}
	if r := w.sendOne(m); r.Outcome != channel.Drop || r.Reason != "43101" {
		t.Fatalf("second: %+v, want Drop 43101", r)
	}
}

// The daily quota: the call past it is Retry until midnight in China, and the rest of the
// batch waits without calling.
func TestSendQuotaWaitsForMidnight(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.Concurrency = 1 })
	w.fake.SetQuota(testAppID, 1)
	a, b, c := w.subscriber("o-person-000000a", false), w.subscriber("o-person-000000b", false), w.subscriber("o-person-000000c", false)
	rs := w.send(a, b, c)
	if rs[0].Outcome != channel.Sent {
		t.Fatalf("first: %+v", rs[0])
	}
	want := 9*time.Hour - 4*time.Minute
	for _, r := range rs[1:] {
		if r.Outcome != channel.Retry || r.Reason != "45009" || r.Wait != want {
			t.Fatalf("got %+v, want Retry 45009 wait %v", r, want)
		}
	}
	if n := w.fake.Requests("send", testAppID); n != 2 {
		t.Fatalf("the fake saw %d sends, want 2 (the third waits without calling)", n)
	}
	w.clock.Advance(want)
	if r := w.sendOne(c); r.Outcome != channel.Sent {
		t.Fatalf("after midnight: %+v", r)
	}
}

// Two replicas on one store share one token: the fake's token endpoint sees one request.
func TestTokenSharedByReplicas(t *testing.T) {
	w := newWorld(t, nil)
	other := w.newSender(nil)
	ms := make([]channel.Message, 20)
	for i := range ms {
		ms[i] = w.subscriber("o-person-shared-"+string(rune('a'+i)), false)
	}
	var wg sync.WaitGroup
	for _, s := range []*Sender{w.sender, other} {
		wg.Go(func() {
			for _, r := range s.Send(context.Background(), ms) {
				if r.Outcome != channel.Sent {
					t.Errorf("got %+v", r)
				}
			}
		})
	}
	wg.Wait()
	if n := w.fake.Requests("token", testAppID); n != 1 {
		t.Fatalf("the fake issued %d tokens, want 1", n)
	}
}

// An expired token (WeChat's 42001) is dropped, refreshed once, and the message goes.
func TestTokenExpiredRefreshedOnce(t *testing.T) {
	w := newWorld(t, nil)
	m := w.subscriber("o-person-0000005", false)
	if r := w.sendOne(m); r.Outcome != channel.Sent {
		t.Fatal(r)
	}
	w.clock.Advance(2*time.Hour + time.Second) // the fake's tokens expire; Redis still has it
	rs := w.send(m, m, m, m)
	for _, r := range rs {
		if r.Outcome != channel.Sent {
			t.Fatalf("got %+v, want Sent after a refresh", r)
		}
	}
	if n := w.fake.Requests("token", testAppID); n != 2 {
		t.Fatalf("the fake issued %d tokens, want 2 (one refresh)", n)
	}
}

// A token another client invalidated (40001) is dropped and replaced; a second refusal of the
// fresh token is Retry, not a loop.
func TestTokenRefusedTwiceIsRetry(t *testing.T) {
	w := newWorld(t, nil)
	m := w.subscriber("o-person-0000006", false)
	w.fake.Fail(2, fakewechat.InvalidCredential())
	r := w.sendOne(m)
	if r.Outcome != channel.Retry || r.Reason != "40001" {
		t.Fatalf("got %+v, want Retry 40001", r)
	}
	if n := w.fake.Requests("token", testAppID); n != 2 {
		t.Fatalf("the fake issued %d tokens, want 2", n)
	}
	if r := w.sendOne(m); r.Outcome != channel.Sent {
		t.Fatalf("then: %+v", r)
	}
}

// Dropping a refused token leaves a newer one another replica stored.
func TestInvalidateComparesTheToken(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	ts := w.sender.apps[testApp].tokens
	tok, err := ts.GetAccessTokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts.invalidate(ctx, "some-older-token")
	if got, _ := w.store.Client.Get(ctx, ts.key).Result(); got != tok {
		t.Fatalf("the stored token changed on dropping another one")
	}
	ts.invalidate(ctx, tok)
	if n, _ := w.store.Client.Exists(ctx, ts.key).Result(); n != 0 {
		t.Fatal("the refused token is still stored")
	}
}

// A wrong secret: no token, the message waits a minute with WeChat's code; nothing leaks.
func TestTokenRefusedSecret(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.MiniPrograms[0].Secret = "wrong-secret-value" })
	r := w.sendOne(w.subscriber("o-person-0000007", false))
	if r.Outcome != channel.Retry || r.Reason != "40125" || r.Wait != time.Minute {
		t.Fatalf("got %+v, want Retry 40125 wait 1m", r)
	}
	w.noSecrets("wrong-secret-value", "o-person-0000007")
}

// When ctx ends, messages are Retry "transport" and Send returns.
func TestSendGivesUpWithTheContext(t *testing.T) {
	// The abandoned calls end at the Timeout, so the fake's server can close soon.
	w := newWorld(t, func(o *Options) { o.Timeout = 500 * time.Millisecond })
	m := w.subscriber("o-person-0000008", false)
	w.sendOne(m) // a token first
	w.fake.Script("o-person-0000008", fakewechat.Slow(5*time.Second), fakewechat.Slow(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := w.sender.Send(ctx, []channel.Message{m, m})
	for _, x := range r {
		if x.Outcome != channel.Retry || x.Reason != "transport" {
			t.Fatalf("got %+v", x)
		}
	}
}

// A subscription for an app or template not configured fails without a call.
func TestSendUnknownAppOrTemplate(t *testing.T) {
	w := newWorld(t, nil)
	m := w.subscriber("o-person-0000009", false)
	m.To.App = "elsewhere"
	if r := w.sendOne(m); r.Outcome != channel.Fail || r.Reason != "unknown_app" {
		t.Fatalf("got %+v", r)
	}
	m.To.App, m.To.Template = testApp, "TPL-gone"
	if r := w.sendOne(m); r.Outcome != channel.Fail || r.Reason != "unknown_template" {
		t.Fatalf("got %+v", r)
	}
}

// Two Senders with the same appid, each with its own fake, in one process: each send reaches
// its own fake (the router tells them apart by their tokens).
func TestParallelFakesWithTheSameAppID(t *testing.T) {
	w1, w2 := newWorld(t, nil), newWorld(t, nil)
	m1, m2 := w1.subscriber("o-person-first00", false), w2.subscriber("o-person-second0", false)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if r := w1.sendOne(m1); r.Outcome != channel.Sent {
				t.Errorf("w1: %+v", r)
			}
		})
		wg.Go(func() {
			if r := w2.sendOne(m2); r.Outcome != channel.Sent {
				t.Errorf("w2: %+v", r)
			}
		})
	}
	wg.Wait()
	if len(w1.fake.Messages()) != 5 || len(w2.fake.Messages()) != 5 {
		t.Fatalf("fakes got %d and %d messages, want 5 each", len(w1.fake.Messages()), len(w2.fake.Messages()))
	}
}

// A token fetch that gets no answer is Retry "transport", without a wait.
func TestSendTokenTransport(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.Endpoint = "http://127.0.0.1:1"; o.Timeout = time.Second })
	r := w.sendOne(w.subscriber("o-person-0000010", false))
	if r.Outcome != channel.Retry || r.Reason != "transport" || r.Wait != 0 {
		t.Fatalf("got %+v", r)
	}
	w.noSecrets("o-person-0000010")
}

// With Redis gone, a process that has the token keeps sending; one that has none retries.
func TestSendWithoutRedis(t *testing.T) {
	w := newWorld(t, nil)
	store := testenv.Embedded(t)
	w.store = store
	s := w.newSender(nil)
	m := w.subscriber("o-person-0000011", false)
	ctx := context.Background()
	if r := s.Send(ctx, []channel.Message{m})[0]; r.Outcome != channel.Sent {
		t.Fatal(r)
	}
	store.Embedded.Close()
	if r := s.Send(ctx, []channel.Message{m})[0]; r.Outcome != channel.Sent {
		t.Fatalf("with the token in memory: %+v", r)
	}
	fresh := w.newSender(nil)
	if r := fresh.Send(ctx, []channel.Message{m})[0]; r.Outcome != channel.Retry || r.Reason != "transport" {
		t.Fatalf("without a token: %+v", r)
	}
}

// A refused secret costs one token call, not one per message.
func TestTokenFailureHeldBack(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.MiniPrograms[0].Secret = "wrong-secret-value" })
	ms := make([]channel.Message, 10)
	for i := range ms {
		ms[i] = w.subscriber("o-person-0000012", false)
	}
	for _, r := range w.send(ms...) {
		if r.Outcome != channel.Retry || r.Reason != "40125" {
			t.Fatalf("got %+v", r)
		}
	}
	if n := w.fake.Requests("token", testAppID); n != 1 {
		t.Fatalf("the fake saw %d token calls, want 1", n)
	}
}
