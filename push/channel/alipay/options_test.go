package alipay_test

import (
	"strings"
	"testing"

	"github.com/tongban/tongban/push/channel/alipay"
)

func TestNewRefuses(t *testing.T) {
	key := otherKey(t)
	base := func() alipay.Options {
		return alipay.Options{MiniPrograms: []alipay.MiniProgram{{
			App: app, AppID: appID, PrivateKey: key, AlipayPublicKey: "x",
			Templates: []alipay.Template{{Category: cat, TemplateID: tpl, Page: "p",
				Fields: map[string]string{"keyword1": "title"}}},
		}}}
	}
	cases := []struct {
		name string
		mut  func(o *alipay.Options)
		want string
	}{
		{"no mini-programs", func(o *alipay.Options) { o.MiniPrograms = nil }, "no mini-programs"},
		{"endpoint not a URL", func(o *alipay.Options) { o.Endpoint = "gateway" }, "endpoint"},
		{"no app", func(o *alipay.Options) { o.MiniPrograms[0].App = "" }, "no app"},
		{"app twice", func(o *alipay.Options) { o.MiniPrograms = append(o.MiniPrograms, o.MiniPrograms[0]) }, "configured twice"},
		{"no app id", func(o *alipay.Options) { o.MiniPrograms[0].AppID = "" }, `"suishenban": no app id`},
		{"no private key", func(o *alipay.Options) { o.MiniPrograms[0].PrivateKey = "" }, "no private key"},
		{"bad private key", func(o *alipay.Options) { o.MiniPrograms[0].PrivateKey = "bm90IGEga2V5" }, "private key"},
		{"no alipay key", func(o *alipay.Options) { o.MiniPrograms[0].AlipayPublicKey = "" }, "no Alipay public key"},
		{"bad alipay key", func(o *alipay.Options) {}, "Alipay public key"},
		{"template without category", func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].Category = "" }, "no category"},
		{"template without id", func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].TemplateID = "" }, `category "benefit": no template id`},
		{"template id too long", func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].TemplateID = strings.Repeat("t", 65) }, "longer than 64"},
		{"no page", func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].Page = "" }, "no page"},
		{"page too long", func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].Page = strings.Repeat("p", 129) }, "longer than 128"},
		{"no fields", func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].Fields = nil }, "no fields"},
		{"unknown source", func(o *alipay.Options) { o.MiniPrograms[0].Templates[0].Fields["keyword2"] = "titel" }, `keyword "keyword2": unknown source "titel"`},
		{"category twice", func(o *alipay.Options) {
			o.MiniPrograms[0].Templates = append(o.MiniPrograms[0].Templates, o.MiniPrograms[0].Templates[0])
		}, "two templates"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := base()
			c.mut(&o)
			_, err := alipay.New(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if strings.Contains(err.Error(), key[:40]) {
				t.Fatal("error carries the key")
			}
		})
	}
}
