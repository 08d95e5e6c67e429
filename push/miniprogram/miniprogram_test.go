package miniprogram_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/fakewechat"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/wechat"
	"github.com/tongban/tongban/push/miniprogram"
)

const (
	appID                        = "wx00000000000000aa"
	secret                       = "the-mini-programs-secret"
	tplBirth, tplTravel, tplOnce = "tpl-birth", "tpl-travel", "tpl-once"
)

var kek = []byte("0123456789abcdef0123456789abcdef")

// world is a store, a fake WeChat, the real WeChat sender (the registrar: code2Session
// through silenceper/wechat) and the bindings over them.
type world struct {
	t     *testing.T
	store *redisx.Store
	fake  *fakewechat.Server
	b     *miniprogram.Bindings
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fake := fakewechat.New()
	fake.AddApp(appID, secret)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	store := testenv.Redis(t)
	fields := map[string]string{"thing1": "title"}
	s, err := wechat.New(wechat.Options{Store: store, Endpoint: srv.URL, MiniPrograms: []wechat.MiniProgram{{
		App: "zheliban", AppID: appID, Secret: secret, Templates: []wechat.Template{
			{Category: "婚育", TemplateID: tplBirth, Fields: fields},
			{Category: "出行", TemplateID: tplTravel, Fields: fields},
			{Category: "教育", TemplateID: tplOnce, Fields: fields},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := miniprogram.New(miniprogram.Options{Store: store, KEK: kek, Registrars: []channel.Registrar{s}, Templates: []miniprogram.Template{
		{Kind: channel.WeChat, App: "zheliban", Category: "婚育", ID: tplBirth, LongTerm: true},
		{Kind: channel.WeChat, App: "zheliban", Category: "出行", ID: tplTravel, LongTerm: true},
		{Kind: channel.WeChat, App: "zheliban", Category: "教育", ID: tplOnce},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, store: store, fake: fake, b: b}
}

func (w *world) register(pid, openid string) miniprogram.Binding {
	w.t.Helper()
	bd, err := w.b.Register(context.Background(), pid, channel.WeChat, "zheliban", w.fake.LoginCode(appID, openid))
	if err != nil {
		w.t.Fatal(err)
	}
	return bd
}

func (w *world) record(pid string, long bool, tpls ...string) []miniprogram.Subscription {
	w.t.Helper()
	subs, err := w.b.Record(context.Background(), pid, channel.WeChat, "zheliban", tpls, long)
	if err != nil {
		w.t.Fatal(err)
	}
	return subs
}

func (w *world) endpoints(pid, category string) []channel.Endpoint {
	w.t.Helper()
	p := w.store.Client.Pipeline()
	get := w.b.QueueEndpoints(context.Background(), p, pid)
	if _, err := p.Exec(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	es, err := get(category)
	if err != nil {
		w.t.Fatal(err)
	}
	return es
}

func (w *world) used(pid string, e channel.Endpoint) {
	w.t.Helper()
	if _, err := w.store.Client.Pipelined(context.Background(), func(p redis.Pipeliner) error {
		w.b.QueueUsed(context.Background(), p, pid, e)
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
}

// The platform's answer to the login code names the account; a subscription of the category's
// template is an endpoint with the account's id for the sender, and nothing of it is stored in
// clear.
func TestRegisterRecordAndEndpoints(t *testing.T) {
	w := newWorld(t)
	w.register("p1", "o-openid-of-wang-fang")
	if es := w.endpoints("p1", "婚育"); len(es) != 0 {
		t.Fatalf("endpoints before any subscription: %+v", es)
	}
	subs := w.record("p1", true, tplBirth)
	if len(subs) != 1 || !subs[0].LongTerm || subs[0].Category != "婚育" {
		t.Fatalf("recorded %+v", subs)
	}
	es := w.endpoints("p1", "婚育")
	if len(es) != 1 || es[0].Address != "o-openid-of-wang-fang" || es[0].Template != tplBirth || es[0].OneTime || !strings.HasPrefix(es[0].ID, "s_") {
		t.Fatalf("endpoints %+v", es)
	}
	if es := w.endpoints("p1", "出行"); len(es) != 0 {
		t.Fatalf("a category without a subscription has endpoints: %+v", es)
	}
	raw := w.store.Client.HGetAll(context.Background(), w.store.Key("{p:p1}:mp")).Val()
	for f, v := range raw {
		if strings.Contains(f+v, "o-openid-of-wang-fang") {
			t.Fatalf("the openid is stored in clear: %s = %s", f, v)
		}
	}
	// Long-term subscriptions persist over uses.
	w.used("p1", es[0])
	if again := w.endpoints("p1", "婚育"); len(again) != 1 {
		t.Fatalf("a long-term subscription was used up: %+v", again)
	}
}

// Each "allow" of a one-time template lets one message through; a send uses one.
func TestOneTimeSubscriptionsAreUsedUp(t *testing.T) {
	w := newWorld(t)
	w.register("p1", "o-one")
	w.record("p1", false, tplOnce)
	subs := w.record("p1", false, tplOnce)
	if subs[0].Remaining != 2 || subs[0].LongTerm {
		t.Fatalf("two allows: %+v", subs)
	}
	for i := range 2 {
		es := w.endpoints("p1", "教育")
		if len(es) != 1 || !es[0].OneTime {
			t.Fatalf("use %d: endpoints %+v", i, es)
		}
		w.used("p1", es[0])
	}
	if es := w.endpoints("p1", "教育"); len(es) != 0 {
		t.Fatalf("after two sends the subscription is left: %+v", es)
	}
	list, err := w.b.List(context.Background(), "p1")
	if err != nil || len(list) != 1 || len(list[0].Subscriptions) != 0 {
		t.Fatalf("List: %+v %v", list, err)
	}
	// A one-time allow does not undo a long-term subscription.
	w.record("p1", true, tplBirth)
	if subs := w.record("p1", false, tplBirth); !subs[0].LongTerm {
		t.Fatalf("a one-time allow turned a long-term subscription into one-time: %+v", subs)
	}
}

// A refusal of the platform drops the subscription; the binding stays.
func TestDropRemovesTheSubscription(t *testing.T) {
	w := newWorld(t)
	w.register("p1", "o-drop")
	w.record("p1", true, tplBirth, tplTravel)
	es := w.endpoints("p1", "婚育")
	if ok, err := w.b.Drop(context.Background(), "p1", es[0]); !ok || err != nil {
		t.Fatalf("Drop: %v %v", ok, err)
	}
	if es := w.endpoints("p1", "婚育"); len(es) != 0 {
		t.Fatalf("dropped subscription still an endpoint: %+v", es)
	}
	if es := w.endpoints("p1", "出行"); len(es) != 1 {
		t.Fatalf("the other subscription went too: %+v", es)
	}
}

// One account belongs to one person: registering it moves it, with its subscriptions; a
// person who signs the mini-program in with another account loses the first's subscriptions.
func TestAnAccountMovesBetweenPeople(t *testing.T) {
	w := newWorld(t)
	w.register("p1", "o-shared-phone")
	w.record("p1", true, tplBirth)
	w.register("p2", "o-shared-phone")
	if es := w.endpoints("p1", "婚育"); len(es) != 0 {
		t.Fatalf("the first person keeps the moved account's subscription: %+v", es)
	}
	if list, _ := w.b.List(context.Background(), "p1"); len(list) != 0 {
		t.Fatalf("the first person keeps the moved account: %+v", list)
	}
	if list, _ := w.b.List(context.Background(), "p2"); len(list) != 1 || len(list[0].Subscriptions) != 0 {
		t.Fatalf("the second person: %+v (subscriptions are the person's to allow again)", list)
	}
	// p2 signs in with another WeChat account: the first one's subscriptions are void.
	w.record("p2", true, tplBirth)
	w.register("p2", "o-second-account")
	if es := w.endpoints("p2", "婚育"); len(es) != 0 {
		t.Fatalf("a subscription of the replaced account: %+v", es)
	}
	if ok, err := w.b.Unregister(context.Background(), "p2", channel.WeChat, "zheliban"); !ok || err != nil {
		t.Fatalf("Unregister: %v %v", ok, err)
	}
	if ok, _ := w.b.Unregister(context.Background(), "p2", channel.WeChat, "zheliban"); ok {
		t.Fatal("a second Unregister found something")
	}
}

// Each refusal names the argument to fix; none repeats a code or an id.
func TestRefusals(t *testing.T) {
	w := newWorld(t)
	w.register("p1", "o-used")
	code := w.fake.LoginCode(appID, "o-x")
	if _, err := w.b.Register(context.Background(), "p9", channel.WeChat, "zheliban", code); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"a code WeChat refuses", "loginCode", func() error {
			_, err := w.b.Register(ctx, "p2", channel.WeChat, "zheliban", "not-a-code")
			return err
		}},
		{"a code used twice", "loginCode", func() error {
			_, err := w.b.Register(ctx, "p2", channel.WeChat, "zheliban", code)
			return err
		}},
		{"no code", "loginCode", func() error {
			_, err := w.b.Register(ctx, "p2", channel.WeChat, "zheliban", "")
			return err
		}},
		{"a code too long", "loginCode", func() error {
			_, err := w.b.Register(ctx, "p2", channel.WeChat, "zheliban", strings.Repeat("c", 600))
			return err
		}},
		{"an app without a mini-program", "app", func() error {
			_, err := w.b.Register(ctx, "p2", channel.WeChat, "sufuban", "c")
			return err
		}},
		{"a platform not configured", "platform", func() error {
			_, err := w.b.Register(ctx, "p2", channel.Alipay, "zheliban", "c")
			return err
		}},
		{"a device kind for a platform", "platform", func() error {
			_, err := w.b.Register(ctx, "p2", channel.FCM, "zheliban", "c")
			return err
		}},
		{"subscriptions before registering", "app", func() error {
			_, err := w.b.Record(ctx, "p-none", channel.WeChat, "zheliban", []string{tplBirth}, false)
			return err
		}},
		{"a template of no app here", "templateIds", func() error {
			_, err := w.b.Record(ctx, "p1", channel.WeChat, "zheliban", []string{"tpl-unknown"}, false)
			return err
		}},
		{"long-term for a one-time template", "kind", func() error {
			_, err := w.b.Record(ctx, "p1", channel.WeChat, "zheliban", []string{tplOnce}, true)
			return err
		}},
		{"no templates", "templateIds", func() error {
			_, err := w.b.Record(ctx, "p1", channel.WeChat, "zheliban", nil, false)
			return err
		}},
		{"too many templates", "templateIds", func() error {
			_, err := w.b.Record(ctx, "p1", channel.WeChat, "zheliban", make([]string, miniprogram.MaxTemplatesPerCall+1), false)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			ie, ok := errors.AsType[*miniprogram.InputError](err)
			if !ok || ie.Field != tc.field {
				t.Fatalf("got %v, want an input error on %s", err, tc.field)
			}
			if strings.Contains(err.Error(), code) || strings.Contains(err.Error(), "o-x") {
				t.Fatalf("the error repeats a code or an id: %v", err)
			}
		})
	}
}

// A person keeps at most MaxBindingsPerPerson mini-programs; the one past it is refused and
// leaves the account free.
func TestBindingsAreBounded(t *testing.T) {
	store := testenv.Redis(t)
	fake := fakewechat.New()
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	var mps []wechat.MiniProgram
	var tpls []miniprogram.Template
	apps := make([]string, miniprogram.MaxBindingsPerPerson+1)
	for i := range apps {
		apps[i] = "app" + string(rune('a'+i))
		id := "wx0000000000000" + string(rune('a'+i)) + "0"
		fake.AddApp(id, secret)
		mps = append(mps, wechat.MiniProgram{App: apps[i], AppID: id, Secret: secret,
			Templates: []wechat.Template{{Category: "婚育", TemplateID: "t" + apps[i], Fields: map[string]string{"thing1": "title"}}}})
		tpls = append(tpls, miniprogram.Template{Kind: channel.WeChat, App: apps[i], Category: "婚育", ID: "t" + apps[i]})
	}
	s, err := wechat.New(wechat.Options{Store: store, Endpoint: srv.URL, MiniPrograms: mps})
	if err != nil {
		t.Fatal(err)
	}
	b, err := miniprogram.New(miniprogram.Options{Store: store, KEK: kek, Registrars: []channel.Registrar{s}, Templates: tpls})
	if err != nil {
		t.Fatal(err)
	}
	// The last account belongs to p2 when p1, already holding the most, tries it.
	last := apps[len(apps)-1]
	if _, err := b.Register(context.Background(), "p2", channel.WeChat, last, fake.LoginCode(mps[len(mps)-1].AppID, "o-"+last)); err != nil {
		t.Fatal(err)
	}
	for i, app := range apps {
		_, err := b.Register(context.Background(), "p1", channel.WeChat, app, fake.LoginCode(mps[i].AppID, "o-"+app))
		if i < miniprogram.MaxBindingsPerPerson && err != nil {
			t.Fatalf("binding %d: %v", i, err)
		}
		if i == miniprogram.MaxBindingsPerPerson {
			if ie, ok := errors.AsType[*miniprogram.InputError](err); !ok || ie.Field != "app" {
				t.Fatalf("binding past the most: %v", err)
			}
		}
	}
	if list, err := b.List(context.Background(), "p2"); err != nil || len(list) != 1 || list[0].App != last {
		t.Fatalf("the refused registration took the account from its owner: %+v %v", list, err)
	}
}
