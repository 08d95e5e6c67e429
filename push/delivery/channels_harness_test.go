package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakealipay"
	"github.com/tongban/tongban/internal/fakeapns"
	"github.com/tongban/tongban/internal/fakefcm"
	"github.com/tongban/tongban/internal/fakehms"
	"github.com/tongban/tongban/internal/fakewechat"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/alipay"
	"github.com/tongban/tongban/push/channel/apns"
	"github.com/tongban/tongban/push/channel/hms"
	"github.com/tongban/tongban/push/channel/wechat"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/miniprogram"
)

// channelsWorld is a deliveryWorld with all five channels: FCM (the SDK against fakefcm, as
// deliveryWorld has it), APNs, HMS, WeChat and Alipay against their in-process fakes, wired as
// app/channels.go wires them in dev mode, and the mini-program bindings as
// delivery.Options.Subscriptions. Every replica gets its own Sender instances (and Bindings)
// pointed at the same fakes, as separate processes would have; the WeChat senders share their
// access tokens through the Store.
type channelsWorld struct {
	*deliveryWorld
	fakes *channelFakes
	// bindings is the test's own Bindings (its Registrars are senders of its own), to play
	// the mini-program's side and to list subscriptions.
	bindings *miniprogram.Bindings
}

// channelFakes are the vendors' fakes and what a sender needs to reach them.
type channelFakes struct {
	t testing.TB

	apns     *fakeapns.Server
	apnsRun  *fakeapns.Running
	apnsP8   []byte
	hms      *fakehms.Server
	hmsURL   string
	hmsKey   []byte
	wx       *fakewechat.Server
	wxURL    string
	wxApps   map[string][2]string // app → appid, secret
	ali      *fakealipay.Server
	aliURL   string
	aliApps  map[string][2]string // app → appid, private key
	tpls     []miniprogram.Template
	hmsBatch int
}

const (
	apnsKeyID, apnsTeam = "TESTKEY001", "TESTTEAM01"
	hmsProject          = "tongban-hms-test"
)

// newChannelFakes starts the four vendors' fakes, with a WeChat and an Alipay mini-program per
// member app and a template per category in each (long-term allowed, as dev mode has them).
func newChannelFakes(t testing.TB) *channelFakes {
	t.Helper()
	f := &channelFakes{t: t, wxApps: map[string][2]string{}, aliApps: map[string][2]string{}, hmsBatch: 16}

	f.apns = fakeapns.NewServer()
	p8, key, err := fakeapns.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.apnsP8 = p8
	f.apns.AddKey(apnsTeam, apnsKeyID, &key.PublicKey)
	for _, app := range deliveryApps {
		f.apns.AddTopics(apnsTopic(app))
	}
	f.apnsRun = f.apns.Start()
	t.Cleanup(f.apnsRun.Close)

	f.hms = fakehms.NewServer(hmsProject)
	if f.hmsKey, err = f.hms.NewServiceAccount(); err != nil {
		t.Fatal(err)
	}
	hts := httptest.NewServer(f.hms.Handler())
	t.Cleanup(hts.Close)
	f.hmsURL = hts.URL

	f.wx = fakewechat.New()
	wts := httptest.NewServer(f.wx.Handler())
	t.Cleanup(wts.Close)
	f.wxURL = wts.URL

	if f.ali, err = fakealipay.New(); err != nil {
		t.Fatal(err)
	}
	ats := httptest.NewServer(f.ali.Handler())
	t.Cleanup(ats.Close)
	f.aliURL = ats.URL + "/gateway.do"

	for i, app := range deliveryApps {
		wxID, secret := fmt.Sprintf("wxtest%011d", i+1), fmt.Sprintf("secret%026d", i+1)
		f.wx.AddApp(wxID, secret)
		f.wxApps[app] = [2]string{wxID, secret}
		aliID := fmt.Sprintf("20219999%08d", i+1)
		priv, err := f.ali.NewApp(aliID)
		if err != nil {
			t.Fatal(err)
		}
		f.aliApps[app] = [2]string{aliID, priv}
		for j, c := range catalog.Categories() {
			wt, at := wxTemplate(app, j), aliTemplate(app, j)
			f.wx.AddTemplate(wxID, wt, "thing1", "thing2", "time3", "thing4")
			f.ali.AddTemplate(aliID, at, "keyword1", "keyword2", "keyword3", "keyword4")
			f.tpls = append(f.tpls,
				miniprogram.Template{Kind: channel.WeChat, App: app, Category: c, ID: wt, LongTerm: true},
				miniprogram.Template{Kind: channel.Alipay, App: app, Category: c, ID: at, LongTerm: true})
		}
	}
	return f
}

func apnsTopic(app string) string          { return "cn.gov.test." + app }
func wxTemplate(app string, j int) string  { return fmt.Sprintf("wx-%s-%02d", app, j) }
func aliTemplate(app string, j int) string { return fmt.Sprintf("ali-%s-%02d", app, j) }

// template is the id of category's template of app's mini-program on kind.
func (f *channelFakes) template(kind channel.Kind, app, category string) string {
	for _, t := range f.tpls {
		if t.Kind == kind && t.App == app && t.Category == category {
			return t.ID
		}
	}
	f.t.Fatalf("no %s template for %s in %s", kind, category, app)
	return ""
}

// senders makes a replica's own senders of the four channels, pointed at the fakes: the
// wiring of app/channels.go. now is the WeChat sender's clock of quota waits (the test's).
func (f *channelFakes) senders(store *redisx.Store, now func() time.Time) (apnsS *apns.Sender, hmsS *hms.Sender, wxS *wechat.Sender, aliS *alipay.Sender) {
	t := f.t
	quiet := slog.New(slog.DiscardHandler)
	topics := map[string]string{}
	for _, app := range deliveryApps {
		topics[app] = apnsTopic(app)
	}
	apnsS, err := apns.New(apns.Options{KeyPEM: f.apnsP8, KeyID: apnsKeyID, TeamID: apnsTeam, Topics: topics,
		Endpoint: f.apnsRun.URL, RootCAs: f.apnsRun.RootCAs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apnsS.Close)

	acct, err := hms.ParseServiceAccount(f.hmsKey)
	if err != nil {
		t.Fatal(err)
	}
	if hmsS, err = hms.New(hms.Options{ProjectID: hmsProject, ServiceAccount: acct, Endpoint: f.hmsURL, Batch: f.hmsBatch, Logger: quiet}); err != nil {
		t.Fatal(err)
	}

	wo := wechat.Options{Store: store, Endpoint: f.wxURL, Logger: quiet, Now: now}
	ao := alipay.Options{Endpoint: f.aliURL, Logger: quiet}
	for _, app := range deliveryApps {
		wx, ali := f.wxApps[app], f.aliApps[app]
		wm := wechat.MiniProgram{App: app, AppID: wx[0], Secret: wx[1]}
		am := alipay.MiniProgram{App: app, AppID: ali[0], PrivateKey: ali[1], AlipayPublicKey: f.ali.PublicKey()}
		for j, c := range catalog.Categories() {
			wm.Templates = append(wm.Templates, wechat.Template{Category: c, TemplateID: wxTemplate(app, j), Page: "pages/notice/index?id={id}",
				Fields: map[string]string{"thing1": "title", "thing2": "service", "time3": "time", "thing4": "body"}})
			am.Templates = append(am.Templates, alipay.Template{Category: c, TemplateID: aliTemplate(app, j), Page: "pages/notice/index?id={id}",
				Fields: map[string]string{"keyword1": "title", "keyword2": "service", "keyword3": "date", "keyword4": "body"}})
		}
		wo.MiniPrograms = append(wo.MiniPrograms, wm)
		ao.MiniPrograms = append(ao.MiniPrograms, am)
	}
	if wxS, err = wechat.New(wo); err != nil {
		t.Fatal(err)
	}
	if aliS, err = alipay.New(ao); err != nil {
		t.Fatal(err)
	}
	return apnsS, hmsS, wxS, aliS
}

// bindingsOver makes Bindings whose registrars are the given senders.
func (f *channelFakes) bindingsOver(store *redisx.Store, now func() time.Time, regs ...channel.Registrar) *miniprogram.Bindings {
	b, err := miniprogram.New(miniprogram.Options{Store: store, KEK: []byte(testKEK), Registrars: regs, Templates: f.tpls, Now: now})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// testKEK is deliveryWorld's key-encryption key.
const testKEK = "0123456789abcdef0123456789abcdef"

// wire returns a mutate that gives a replica's options its own senders of the four channels
// and its own Bindings, then applies mutate.
func (f *channelFakes) wire(clock *testenv.Clock, mutate func(*delivery.Options)) func(*delivery.Options) {
	return func(o *delivery.Options) {
		a, h, wx, ali := f.senders(o.Store, clock.Now)
		o.Channels = []channel.Sender{a, h, wx, ali}
		o.Subscriptions = f.bindingsOver(o.Store, clock.Now, wx, ali)
		// A batch is bounded by half of ClaimIdle, and one over five channels' HTTP calls
		// outlasts deliveryWorld's 150 ms on a loaded machine (it would come back as retries);
		// a heartbeat of 100 ms may lapse there too, stopping a batch before a call.
		o.ClaimIdle, o.Heartbeat = 20*time.Second, 300*time.Millisecond
		if mutate != nil {
			mutate(o)
		}
	}
}

// newChannelsWorld starts one replica with all five channels on a store of testenv's.
func newChannelsWorld(t *testing.T, mutate func(*delivery.Options)) *channelsWorld {
	t.Helper()
	return newChannelsWorldOn(t, testenv.Redis(t), mutate)
}

func newChannelsWorldOn(t testing.TB, store *redisx.Store, mutate func(*delivery.Options)) *channelsWorld {
	t.Helper()
	f := newChannelFakes(t)
	clock := testenv.NewClock()
	dw := newDeliveryWorldWithClock(t, store, clock, f.wire(clock, mutate))
	_, _, wx, ali := f.senders(store, clock.Now)
	return &channelsWorld{deliveryWorld: dw, fakes: f, bindings: f.bindingsOver(store, clock.Now, wx, ali)}
}

// newDeliveryWorldWithClock is newDeliveryWorldOn with the clock given, so that the options'
// mutate (which builds the Bindings) can use it.
func newDeliveryWorldWithClock(t testing.TB, store *redisx.Store, clock *testenv.Clock, mutate func(*delivery.Options)) *deliveryWorld {
	t.Helper()
	fcm := fakefcm.NewServer(fcmProject)
	w := &deliveryWorld{t: t, store: store, clock: clock, fcm: fcm}
	w.start(sdkFor(t, fcm), mutate)
	return w
}

// replicaC starts another replica with its own senders of every channel, on the same store,
// clock and fakes; before (when not nil) sets test hooks before it runs.
func (w *channelsWorld) replicaC(mutate func(*delivery.Options), before func(*delivery.Service)) *deliveryWorld {
	w.t.Helper()
	return w.replicaWith(nil, w.fakes.wire(w.clock, mutate), before)
}

// endpoints is one person's endpoint on each channel, by kind: the FCM, APNs and HMS tokens,
// the WeChat openid and the Alipay user id.
type endpoints map[channel.Kind]string

// vendorDevice registers a device of the vendor (FCM, APNS, HMS) for the person.
func (w *channelsWorld) vendorDevice(pid, app, platform, vendor, tok string) devices.Device {
	w.t.Helper()
	d, err := w.devices.RegisterVendor(context.Background(), pid, app, platform, vendor, tok)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

func apnsToken(name string) string {
	h := fmt.Sprintf("%x", name)
	return h + strings.Repeat("0", 64-len(h)%64)
}

func hmsToken(name string) string { return "IQAAAACy0" + name + strings.Repeat("H", 40) }

// subscribe plays a mini-program on kind for the person: the platform's login for user, Register
// with its code, the person's "allow" of category's template on the fake (one-time or
// long-term), and Record of it.
func (w *channelsWorld) subscribe(pid string, kind channel.Kind, app, user, category string, long bool) {
	w.t.Helper()
	ctx := context.Background()
	f := w.fakes
	tpl := f.template(kind, app, category)
	var code string
	if kind == channel.WeChat {
		code = f.wx.LoginCode(f.wxApps[app][0], user)
	} else {
		code = f.ali.LoginCode(f.aliApps[app][0], user)
	}
	if _, err := w.bindings.Register(ctx, pid, kind, app, code); err != nil {
		w.t.Fatalf("register %s: %v", kind, err)
	}
	if kind == channel.WeChat {
		f.wx.Accept(f.wxApps[app][0], user, tpl, !long)
	} else {
		f.ali.Subscribe(f.aliApps[app][0], user, tpl, !long)
	}
	if _, err := w.bindings.Record(ctx, pid, kind, app, []string{tpl}, long); err != nil {
		w.t.Fatalf("record %s: %v", kind, err)
	}
}

// everywhere gives the person an endpoint on each of the five channels, named after name, in
// app: an FCM, an APNs and an HMS device, a WeChat one-time subscription (or long-term when
// wxLong) and an Alipay long-term one, all for category.
func (w *channelsWorld) everywhere(pid, app, name, category string, wxLong bool) endpoints {
	w.t.Helper()
	e := endpoints{
		channel.FCM: token(name), channel.APNs: apnsToken(name), channel.HMS: hmsToken(name),
		channel.WeChat: "o-" + name, channel.Alipay: fmt.Sprintf("2088%012d", aliSeq(name)),
	}
	w.vendorDevice(pid, app, "ANDROID", devices.VendorFCM, e[channel.FCM])
	w.vendorDevice(pid, app, "IOS", devices.VendorAPNs, e[channel.APNs])
	w.vendorDevice(pid, app, "HARMONY", devices.VendorHMS, e[channel.HMS])
	w.subscribe(pid, channel.WeChat, app, e[channel.WeChat], category, wxLong)
	w.subscribe(pid, channel.Alipay, app, e[channel.Alipay], category, true)
	return e
}

// aliSeq turns a name into a number for an Alipay user id (2088 and 12 digits).
func aliSeq(name string) int64 {
	var h int64 = 7
	for _, c := range name {
		h = (h*131 + int64(c)) % 1_000_000_000_000
	}
	return h
}

// copyOf is one message a fake accepted: the endpoint's address and the notification id the
// message carried.
type copyOf struct{ addr, id string }

// receivedAll reads every fake's accepted messages: per channel, per endpoint address, the
// notification ids carried, one per copy. Where each vendor's message carries the id:
//
//	FCM     data.notification_id (also android.collapse_key and notification.tag)
//	APNs    the payload's notification_id (also apns-collapse-id)
//	HMS     notification.clickAction.data.notificationId (notifyId is a hash of it)
//	WeChat  page: pages/notice/index?id=<id>
//	Alipay  page: pages/notice/index?id=<id>
func (w *channelsWorld) receivedAll() map[channel.Kind]map[string][]string {
	out := map[channel.Kind]map[string][]string{}
	add := func(k channel.Kind, addr, id string) {
		if out[k] == nil {
			out[k] = map[string][]string{}
		}
		out[k][addr] = append(out[k][addr], id)
	}
	for _, m := range w.fcm.Messages() {
		add(channel.FCM, m.Message.Token, m.Message.Data["notification_id"])
	}
	for _, m := range w.fakes.apns.Messages() {
		var p struct {
			ID string `json:"notification_id"`
		}
		_ = json.Unmarshal(m.Payload, &p)
		add(channel.APNs, m.Token, p.ID)
	}
	for _, m := range w.fakes.hms.Messages() {
		id := ""
		if m.Message.ClickAction != nil {
			id, _ = m.Message.ClickAction.Data["notificationId"].(string)
		}
		add(channel.HMS, m.Token, id)
	}
	for _, m := range w.fakes.wx.Messages() {
		add(channel.WeChat, m.ToUser, pageID(m.Page))
	}
	for _, m := range w.fakes.ali.Messages() {
		add(channel.Alipay, m.ToUserID, pageID(m.Page))
	}
	return out
}

// pageID reads the id out of a mini-program page "pages/notice/index?id=<id>".
func pageID(page string) string {
	_, id, ok := strings.Cut(page, "?id=")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(id, '&'); i >= 0 {
		id = id[:i]
	}
	return id
}

// count is how many copies the endpoint addr of kind received.
func (w *channelsWorld) count(kind channel.Kind, addr string) int {
	return len(w.receivedAll()[kind][addr])
}

// counts is how many copies each of the person's endpoints received, by kind.
func (w *channelsWorld) counts(e endpoints) map[channel.Kind]int {
	all := w.receivedAll()
	out := map[channel.Kind]int{}
	for k, addr := range e {
		out[k] = len(all[k][addr])
	}
	return out
}

// subscriptionsOf lists the person's live subscriptions of kind: template → remaining sends
// (0 for long-term ones).
func (w *channelsWorld) subscriptionsOf(pid string, kind channel.Kind) map[string]int {
	w.t.Helper()
	bs, err := w.bindings.List(context.Background(), pid)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]int{}
	for _, b := range bs {
		if b.Kind != kind {
			continue
		}
		for _, s := range b.Subscriptions {
			out[s.Template] = s.Remaining
		}
	}
	return out
}

// vendorsOf lists the vendors of the person's registered devices, with how many of each.
func (w *channelsWorld) vendorsOf(pid string) map[string]int {
	w.t.Helper()
	ds, err := w.devices.List(context.Background(), pid)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range ds {
		out[d.Vendor]++
	}
	return out
}
