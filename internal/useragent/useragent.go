package useragent

import (
	"context"
	"net/http"
	"strings"
)

// MaxLen is how much of a User-Agent Describe reads: enough for every real client, and a
// bound on the work an attacker's header costs.
const MaxLen = 512

// marker is a substring (lower case) that names a platform or an app.
type marker struct{ token, name string }

// Platforms, most specific first: HarmonyOS phones also say Android, iPads may say Macintosh,
// Android says Linux.
var platforms = []marker{
	{"openharmony", "HarmonyOS"},
	{"harmonyos", "HarmonyOS"},
	{"iphone", "iPhone"},
	{"ipad", "iPad"},
	{"android", "Android"},
	{"windows", "Windows"},
	{"cros", "ChromeOS"},
	{"macintosh", "Mac"},
	{"mac os x", "Mac"},
	{"linux", "Linux"},
}

// Apps whose in-app browsers citizens sign in from, before the generic browser.
var apps = []marker{
	{"micromessenger", "WeChat"},
	{"wechat", "WeChat"},
	{"alipayclient", "Alipay"},
	{"alipay", "Alipay"},
	{"dingtalk", "DingTalk"},
	{"aweme", "Douyin"},
	{"weibo", "Weibo"},
	{" qq/", "QQ"},
}

// Describe returns "<platform> · <app>" for a User-Agent, or "" when the platform is not one it
// knows. The app is "Browser" for a browser it does not single out and "App" for a client
// that is no browser at all.
func Describe(ua string) string {
	if len(ua) > MaxLen {
		ua = ua[:MaxLen]
	}
	ua = strings.ToLower(ua)
	platform := find(ua, platforms)
	if platform == "" {
		return ""
	}
	app := find(ua, apps)
	if app == "" {
		app = "App"
		if strings.Contains(ua, "mozilla/") {
			app = "Browser"
		}
	}
	return platform + " · " + app
}

func find(ua string, ms []marker) string {
	for _, m := range ms {
		if strings.Contains(ua, m.token) {
			return m.name
		}
	}
	return ""
}

type deviceKey struct{}

// WithDevice returns ctx carrying desc, a description made by Describe.
func WithDevice(ctx context.Context, desc string) context.Context {
	return context.WithValue(ctx, deviceKey{}, desc)
}

// Device is the description WithDevice put in ctx, or "".
func Device(ctx context.Context) string {
	d, _ := ctx.Value(deviceKey{}).(string)
	return d
}

// Middleware puts the description of each request's User-Agent in its context, where opening a
// session finds it.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(WithDevice(r.Context(), Describe(r.UserAgent()))))
	})
}
