package useragent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, c := range []struct{ why, ua, want string }{
		{"empty", "", ""},
		{"no platform it knows", "curl/8.5.0", ""},
		{"WeChat on an iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN", "iPhone · WeChat"},
		{"Alipay on Android", "Mozilla/5.0 (Linux; U; Android 13; zh-CN; V2227A Build/TP1A.220624.014) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.59 Mobile Safari/537.36 AlipayChannelId/5136 UCBS/3.22.2.59_230817141218 NebulaSDK/1.8.100112 Nebula AlipayDefined(nt:WIFI,ws:393|0|2.75) AliApp(AP/10.5.36.8100) AlipayClient/10.5.36.8100 Language/zh-Hans useStatusBar/true isConcaveScreen/true", "Android · Alipay"},
		{"HarmonyOS says Android too", "Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.301 Mobile Safari/537.36", "HarmonyOS · Browser"},
		{"HarmonyOS NEXT", "Mozilla/5.0 (Phone; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile", "HarmonyOS · Browser"},
		{"a browser on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Windows · Browser"},
		{"WeChat for Windows", "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x6309092b) XWEB/9129", "Windows · WeChat"},
		{"Safari on a Mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15", "Mac · Browser"},
		{"an iPad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", "iPad · Browser"},
		{"DingTalk on Android", "Mozilla/5.0 (Linux; U; Android 11; zh-CN; M2012K11AC) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 AliApp(DingTalk/7.0.50) com.alibaba.android.rimet/33000000 Channel/227200 language/zh-CN", "Android · DingTalk"},
		{"a native app that is no browser", "okhttp/4.12.0 (Android 14)", "Android · App"},
		{"QQ Browser is a browser, not QQ", "Mozilla/5.0 (Linux; U; Android 10; zh-cn; MI 9) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/89.0.4389.72 MQQBrowser/13.2 Mobile Safari/537.36", "Android · Browser"},
		{"QQ's own browser", "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 QQ/8.9.28.635 V1_IPH_SQ_8.9.28_1_APP_A Pixel/1170", "iPhone · QQ"},
		{"a marker past the bound is not read", "Mozilla/5.0 " + strings.Repeat("x", MaxLen) + " (iPhone)", ""},
	} {
		if got := Describe(c.ua); got != c.want {
			t.Errorf("%s: Describe = %q, want %q", c.why, got, c.want)
		}
	}
}

func TestMiddlewareCarriesTheDescriptionOnly(t *testing.T) {
	var got string
	h := Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = Device(r.Context()) }))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "Windows · Browser" {
		t.Errorf("Device = %q, want Windows · Browser", got)
	}
	if d := Device(context.Background()); d != "" {
		t.Errorf("Device of a bare context = %q, want empty", d)
	}
}

func FuzzDescribe(f *testing.F) {
	for _, s := range []string{"", "Mozilla/5.0 (iPhone) MicroMessenger/8", "okhttp (Android)", "\xff\xfe android", strings.Repeat("a", 600)} {
		f.Add(s)
	}
	known := map[string]bool{}
	for _, p := range platforms {
		for _, a := range append(apps, marker{name: "Browser"}, marker{name: "App"}) {
			known[p.name+" · "+a.name] = true
		}
	}
	f.Fuzz(func(t *testing.T, ua string) {
		got := Describe(ua)
		if got != "" && !known[got] {
			t.Fatalf("Describe(%q) = %q: not a description it is meant to give", ua, got)
		}
		if got != Describe(ua[:min(len(ua), MaxLen)]) {
			t.Fatalf("Describe(%q) reads past MaxLen", ua)
		}
	})
}
