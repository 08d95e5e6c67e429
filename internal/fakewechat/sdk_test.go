package fakewechat

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/miniprogram"
	"github.com/silenceper/wechat/v2/miniprogram/config"
	"github.com/silenceper/wechat/v2/miniprogram/subscribe"
	"github.com/silenceper/wechat/v2/util"
)

// toFake sends every request to the fake, whatever host the SDK wrote.
type toFake struct{ base *url.URL }

func (f toFake) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = f.base.Scheme, f.base.Host, ""
	return http.DefaultTransport.RoundTrip(out)
}

// silenceper/wechat, with its own token handle and memory cache, talks to the fake unchanged:
// a token, a login, a send, and the fake's refusal read back as the SDK's CommonError.
func TestSDKTalksToTheFake(t *testing.T) {
	r := newRig(t)
	base, _ := url.Parse(r.url)
	old := util.DefaultHTTPClient
	util.DefaultHTTPClient = &http.Client{Transport: toFake{base}}
	t.Cleanup(func() { util.DefaultHTTPClient = old })

	mp := miniprogram.NewMiniProgram(&config.Config{AppID: appID, AppSecret: secret, Cache: cache.NewMemory()})
	res, err := mp.GetAuth().Code2Session(r.s.LoginCode(appID, "o-sdk-person-01"))
	if err != nil || res.OpenID != "o-sdk-person-01" {
		t.Fatalf("code2Session: %+v %v", res, err)
	}
	r.s.Accept(appID, "o-sdk-person-01", tpl, true)
	m := &subscribe.Message{ToUser: "o-sdk-person-01", TemplateID: tpl, Data: map[string]*subscribe.DataItem{
		"thing1": {Value: good["thing1"]}, "time2": {Value: good["time2"]},
	}}
	if err := mp.GetSubscribe().Send(m); err != nil {
		t.Fatalf("send: %v", err)
	}
	err = mp.GetSubscribe().Send(m)
	ce, ok := err.(*util.CommonError)
	if !ok || ce.ErrCode != 43101 {
		t.Fatalf("second send: %v, want the SDK's CommonError 43101", err)
	}
	if n := r.s.Requests("token", appID); n != 1 {
		t.Fatalf("%d token calls", n)
	}
}
