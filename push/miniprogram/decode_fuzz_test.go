package miniprogram

import (
	"testing"

	"github.com/tongban/tongban/push/channel"
)

// What a person's hash holds is read back by List and by delivery's endpoints; whatever it
// holds (a record of another version, junk written by hand), reading it neither panics nor
// yields an endpoint without an address.
func FuzzDecode(f *testing.F) {
	f.Add("b|wechat|zheliban", `{"u":"x","h":"h1","at":1}`, "s|wechat|zheliban|t1", `{"k":"one_time","n":1,"h":"h1","at":1}`)
	f.Add("b|alipay|a|b", `{}`, "s|wechat", `{"k":"long_term","n":-5}`)
	f.Add("s|wechat|zheliban|t1|x", `[`, "b|wechat|zheliban", `null`)
	b := &Bindings{kek: []byte("0123456789abcdef0123456789abcdef"), byCategory: map[catKey]Template{
		{channel.WeChat, "zheliban", "婚育"}: {Kind: channel.WeChat, App: "zheliban", Category: "婚育", ID: "t1"},
	}, templates: map[tplKey]Template{}}
	f.Fuzz(func(t *testing.T, f1, v1, f2, v2 string) {
		m := map[string]string{f1: v1, f2: v2}
		for _, bd := range b.decode(m) {
			if bd.Subscriptions == nil {
				t.Fatal("a binding with a nil subscription list")
			}
		}
		es, _ := b.endpoints(m, "婚育")
		for _, e := range es {
			if e.Address == "" || e.ID == "" {
				t.Fatalf("an endpoint without an address or id: %+v", e)
			}
		}
	})
}
