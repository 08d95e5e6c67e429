package app

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const (
	registerMiniProgram = `mutation($app: ID!, $p: MiniProgramPlatform!, $code: String!) { registerMiniProgram(app: $app, platform: $p, loginCode: $code) { app { id } platform boundAt } }`
	recordSubscriptions = `mutation($app: ID!, $p: MiniProgramPlatform!, $t: [String!]!, $k: SubscriptionKind!) { recordSubscriptions(app: $app, platform: $p, templateIds: $t, kind: $k) { templateId category kind remaining } }`
	myMiniPrograms      = `{ me { miniPrograms { app { id } platform subscriptions { templateId category kind remaining } } } }`
)

// devTemplateOf reads GET /dev/miniprograms for the template of category in app's mini-program
// on platform.
func (h *harness) devTemplateOf(platform, app, category string) string {
	h.t.Helper()
	_, body := h.get("/dev/miniprograms")
	var list []devMiniProgram
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		h.t.Fatalf("/dev/miniprograms: %v: %s", err, body)
	}
	for _, mp := range list {
		if mp.Platform == platform && mp.App == app {
			for _, t := range mp.Templates {
				if t.Category == category {
					return t.TemplateID
				}
			}
		}
	}
	h.t.Fatalf("no %s template of %s for %s in %s", platform, app, category, body)
	return ""
}

// miniProgramReady plays the mini-program's side on platform: the platform's login for user,
// registerMiniProgram with its code, the person's "allow" of the category's template, and
// recordSubscriptions of it.
func (h *harness) miniProgramReady(in signedIn, platform, app, user, category string, long bool) {
	h.t.Helper()
	path := "/dev/miniprograms/" + strings.ToLower(platform) + "/" + app + "/"
	r := h.send("POST", path+"login", `{"user": "`+user+`"}`, "Content-Type", "application/json")
	var login struct{ Code string }
	if err := json.Unmarshal([]byte(r.Raw), &login); err != nil || login.Code == "" {
		h.t.Fatalf("dev login: %s", r.Raw)
	}
	if b := h.gql(registerMiniProgram, map[string]any{"app": app, "p": platform, "code": login.Code}, in.access); len(b.Errors) > 0 || b.str("registerMiniProgram", "platform") != platform {
		h.t.Fatalf("registerMiniProgram: %s", b.Raw)
	}
	tpl := h.devTemplateOf(platform, app, category)
	oneTime := "true"
	kind := "ONE_TIME"
	if long {
		oneTime, kind = "false", "LONG_TERM"
	}
	h.send("POST", path+"accept", `{"user": "`+user+`", "templateIds": ["`+tpl+`"], "oneTime": `+oneTime+`}`, "Content-Type", "application/json")
	if s := h.gql(recordSubscriptions, map[string]any{"app": app, "p": platform, "t": []string{tpl}, "k": kind}, in.access); len(s.Errors) > 0 {
		h.t.Fatalf("recordSubscriptions: %s", s.Raw)
	}
}

// channelCounts reads how many messages each dev sink holds that carry text.
func (h *harness) channelCounts(text string) map[string]int {
	out := map[string]int{}
	for _, ch := range []string{"fcm", "apns", "hms", "wechat", "alipay"} {
		_, body := h.get("/dev/" + ch + "/messages")
		out[ch] = strings.Count(body, text)
	}
	return out
}

// The end to end: one event reaches 王芳 on an Android phone (FCM), a Huawei phone
// (Push Kit), an iPhone (APNs), a WeChat one-time subscription and an Alipay long-term one,
// each exactly once; the one-time subscription is then used up, and a second notification of
// the same category reaches every channel but WeChat.
func TestOneNoticeOnEveryChannel(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.phoneReady(fcmToken("wang-fang-android"))
	hmsToken := "IQAAAACy0" + strings.Repeat("Hm5", 40)
	apnsToken := strings.Repeat("a1b2c3d4", 8)
	for _, d := range []map[string]any{
		{"app": "zheliban", "platform": "HARMONY", "vendor": "HMS", "token": hmsToken},
		{"app": "zheliban", "platform": "IOS", "vendor": "APNS", "token": apnsToken},
	} {
		if r := h.gql(registerDevice, map[string]any{"in": d}, in.access); len(r.Errors) > 0 {
			t.Fatalf("registerDevice %v: %s", d["vendor"], r.Raw)
		}
	}
	h.miniProgramReady(in, "WECHAT", "zheliban", "o-wangfang-wx", "婚育", false)
	h.miniProgramReady(in, "ALIPAY", "zheliban", "2088000000000001", "婚育", true)

	h.reportBirth(t, "birth-channels-1")
	const first = "喜添宝宝" // in the dev rule's title (WeChat's thing field may cut it, not this)
	want := map[string]int{"fcm": 1, "apns": 1, "hms": 1, "wechat": 1, "alipay": 1}
	got := h.waitCounts(first, want)
	for ch, n := range want {
		if got[ch] != n {
			t.Fatalf("after the first notice, %s received %d messages, want %d (all: %v)", ch, got[ch], n, got)
		}
	}
	me := h.gql(myMiniPrograms, nil, in.access)
	if !strings.Contains(me.Raw, `"LONG_TERM"`) || strings.Contains(me.Raw, `"ONE_TIME"`) {
		t.Fatalf("after one message the one-time subscription is used up and the long-term one stays: %s", me.Raw)
	}

	// A second rule of the same department on the same service, so the same category.
	owner := machineToken(t, h, "zhejiang-health")
	rule := map[string]any{"name": "新生儿医保参保提醒", "serviceId": "zj-newborn", "category": "婚育",
		"condition": `event.type == "birth.registered"`, "triggers": []string{"birth.registered"},
		"title": "新生儿医保参保提醒", "body": "可在浙里办为宝宝办理城乡居民医保参保"}
	r := h.gql(createRule, map[string]any{"in": rule}, owner)
	if r.str("createPushRule", "id") == "" {
		t.Fatalf("createPushRule: %s", r.Raw)
	}
	if p := h.gql(`mutation($id: ID!) { publishPushRule(id: $id) { status } }`, map[string]any{"id": r.str("createPushRule", "id")}, owner); p.str("publishPushRule", "status") != "PUBLISHED" {
		t.Fatalf("publish: %s", p.Raw)
	}
	h.reportBirth(t, "birth-channels-2")
	const second = "参保提醒" // in the title only
	want = map[string]int{"fcm": 1, "apns": 1, "hms": 1, "wechat": 0, "alipay": 1}
	got = h.waitCounts(second, want)
	for ch, n := range want {
		if got[ch] != n {
			t.Fatalf("after the second notice, %s received %d messages, want %d (all: %v)", ch, got[ch], n, got)
		}
	}
	// And nothing more arrives: the first notice was sent once per endpoint.
	time.Sleep(300 * time.Millisecond)
	if again := h.channelCounts(first); again["wechat"] != 1 || again["fcm"] != 1 || again["alipay"] != 1 {
		t.Fatalf("the first notice arrived again: %v", again)
	}
}

// waitCounts waits until every channel with a positive want holds at least that many messages
// carrying text, and returns the counts.
func (h *harness) waitCounts(text string, want map[string]int) map[string]int {
	h.t.Helper()
	var got map[string]int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = h.channelCounts(text)
		done := true
		for ch, n := range want {
			if n > 0 && got[ch] < n {
				done = false
			}
		}
		if done {
			return got
		}
	}
	return got
}

// What the mini-program mutations refuse, each by the argument to fix, and the anonymous.
func TestMiniProgramRefusalsOnGraphQL(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		field       string
	}{
		{"a login code WeChat never gave", registerMiniProgram, map[string]any{"app": "zheliban", "p": "WECHAT", "code": "forged-code"}, "loginCode"},
		{"an openid sent as the code", registerMiniProgram, map[string]any{"app": "zheliban", "p": "ALIPAY", "code": "2088000000000001"}, "loginCode"},
		{"an app that is not a member", registerMiniProgram, map[string]any{"app": "weixin", "p": "WECHAT", "code": "c"}, "app"},
		{"subscriptions before registering", recordSubscriptions, map[string]any{"app": "sufuban", "p": "WECHAT", "t": []string{"wx-sufuban-06"}, "k": "ONE_TIME"}, "app"},
		{"an APNs token on Android", registerDevice, map[string]any{"in": map[string]any{"app": "zheliban", "platform": "ANDROID", "vendor": "APNS", "token": strings.Repeat("ab", 32)}}, "vendor"},
		{"a Push Kit token that is too short", registerDevice, map[string]any{"in": map[string]any{"app": "zheliban", "platform": "HARMONY", "vendor": "HMS", "token": "short"}}, "token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.gql(c.query, c.vars, in.access)
			if r.code() != "BAD_USER_INPUT" {
				t.Fatalf("got %s, want BAD_USER_INPUT on %s", r.Raw, c.field)
			}
			if ext, _ := r.Errors[0]["extensions"].(map[string]any); ext["field"] != c.field {
				t.Fatalf("got %s, want the field %s", r.Raw, c.field)
			}
		})
	}
	h.miniProgramReady(in, "WECHAT", "zheliban", "o-refusals", "婚育", false)
	for _, c := range []struct {
		name  string
		vars  map[string]any
		field string
	}{
		{"a template of another app", map[string]any{"app": "zheliban", "p": "WECHAT", "t": []string{"wx-sufuban-06"}, "k": "ONE_TIME"}, "templateIds"},
		{"an Alipay template on WeChat", map[string]any{"app": "zheliban", "p": "WECHAT", "t": []string{"ali-zheliban-06"}, "k": "ONE_TIME"}, "templateIds"},
		{"eleven templates", map[string]any{"app": "zheliban", "p": "WECHAT", "t": strings.Split(strings.Repeat("wx-zheliban-06,", 11)[:15*11-1], ","), "k": "ONE_TIME"}, "templateIds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.gql(recordSubscriptions, c.vars, in.access)
			if ext, _ := r.Errors[0]["extensions"].(map[string]any); r.code() != "BAD_USER_INPUT" || ext["field"] != c.field {
				t.Fatalf("got %s, want BAD_USER_INPUT on %s", r.Raw, c.field)
			}
		})
	}
	if r := h.gql(registerMiniProgram, map[string]any{"app": "zheliban", "p": "WECHAT", "code": "c"}, ""); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous registerMiniProgram: %s", r.Raw)
	}
	if r := h.gql(myMiniPrograms, nil, in.access); !strings.Contains(r.Raw, `"platform":"WECHAT"`) || strings.Contains(r.Raw, "o-refusals") {
		t.Fatalf("me.miniPrograms: %s", r.Raw)
	}
	if r := h.gql(`mutation { unregisterMiniProgram(app: "zheliban", platform: WECHAT) }`, nil, in.access); r.field("unregisterMiniProgram") != true {
		t.Fatalf("unregisterMiniProgram: %s", r.Raw)
	}
}
