package app

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/fakealipay"
	"github.com/tongban/tongban/internal/fakeapns"
	"github.com/tongban/tongban/internal/fakehms"
	"github.com/tongban/tongban/internal/fakewechat"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/alipay"
	"github.com/tongban/tongban/push/channel/apns"
	"github.com/tongban/tongban/push/channel/hms"
	"github.com/tongban/tongban/push/channel/wechat"
	"github.com/tongban/tongban/push/miniprogram"
)

// devSinks are dev mode's local vendor services for the channels beside FCM, each what its
// vendor's API is on loopback (internal/fake*); nil fields are channels the configuration set
// up for real.
type devSinks struct {
	APNs      *fakeapns.Server
	apnsRun   *fakeapns.Running
	HMS       *fakehms.Server
	WeChat    *fakewechat.Server
	Alipay    *fakealipay.Server
	appIDs    map[channel.Kind]map[string]string // dev mini-programs' app ids by app
	templates []miniprogram.Template
}

func (d *devSinks) close() {
	if d != nil && d.apnsRun != nil {
		d.apnsRun.Close()
	}
}

// buildChannels makes the senders of APNs, Push Kit, WeChat and Alipay that are configured,
// and the mini-program bindings over the two platforms. In dev mode a channel not configured
// talks to its local sink, set up here with keys of its own. A channel neither configured nor
// in dev mode is off, and says so once.
func (a *App) buildChannels(kek []byte) ([]channel.Sender, error) {
	// A copy: dev mode fills in its sinks without changing the configuration it was given.
	pc := a.cfg.Push
	p := &pc
	if a.cfg.Dev {
		if err := a.devChannels(p); err != nil {
			return nil, fmt.Errorf("app: dev channels: %w", err)
		}
	}
	loc, err := p.Location()
	if err != nil {
		return nil, fmt.Errorf("app: push: %w", err)
	}
	var senders []channel.Sender
	var registrars []channel.Registrar
	var templates []miniprogram.Template
	off := func(name, why string) { a.log.Info("push: the " + name + " channel is off: " + why) }
	var on []string
	defer func() {
		if len(on) > 0 {
			a.log.Info("push: channels on beside FCM", "channels", strings.Join(on, ","))
		}
	}()
	onChannel := func(name string, sink bool) {
		if sink {
			name += " (dev sink)"
		}
		on = append(on, name)
	}
	d := a.devSinks

	if p.APNs.Enabled() {
		o := apns.Options{KeyPEM: []byte(p.APNs.Key), KeyID: p.APNs.KeyID, TeamID: p.APNs.TeamID,
			Topics: p.APNs.Topics, Endpoint: p.APNs.Endpoint, Logger: a.log}
		if d != nil && d.apnsRun != nil {
			o.RootCAs = d.apnsRun.RootCAs
		}
		s, err := apns.New(o)
		if err != nil {
			return nil, fmt.Errorf("app: push.apns: %w", err)
		}
		senders = append(senders, s)
		onChannel("apns", d != nil && d.APNs != nil)
	} else {
		off("APNs", "push.apns has no key; iPhones are reached through FCM only")
	}

	if p.HMS.Enabled() {
		acct, err := hms.ParseServiceAccount([]byte(p.HMS.Credentials))
		if err != nil {
			return nil, fmt.Errorf("app: push.hms.credentials: %w", err)
		}
		s, err := hms.New(hms.Options{ProjectID: p.HMS.ProjectID, ServiceAccount: acct, Endpoint: p.HMS.Endpoint,
			Category: p.HMS.Category, Logger: a.log})
		if err != nil {
			return nil, fmt.Errorf("app: push.hms: %w", err)
		}
		senders = append(senders, s)
		onChannel("hms", d != nil && d.HMS != nil)
	} else {
		off("HarmonyOS Push Kit", "push.hms has no credentials")
	}

	if len(p.WeChat.MiniPrograms) > 0 {
		o := wechat.Options{Store: a.Store, Endpoint: p.WeChat.Endpoint, TimeZone: loc, Logger: a.log}
		for _, m := range p.WeChat.MiniPrograms {
			mp := wechat.MiniProgram{App: m.App, AppID: m.AppID, Secret: m.Secret, State: m.State}
			for _, t := range m.Templates {
				mp.Templates = append(mp.Templates, wechat.Template{Category: t.Category, TemplateID: t.TemplateID, Page: t.Page, Fields: t.Fields})
				templates = append(templates, miniprogram.Template{Kind: channel.WeChat, App: m.App, Category: t.Category, ID: t.TemplateID, LongTerm: t.LongTerm})
			}
			o.MiniPrograms = append(o.MiniPrograms, mp)
		}
		s, err := wechat.New(o)
		if err != nil {
			return nil, fmt.Errorf("app: push.wechat: %w", err)
		}
		senders, registrars = append(senders, s), append(registrars, s)
		onChannel("wechat", d != nil && d.WeChat != nil)
	} else {
		off("WeChat subscription message", "push.wechat has no mini-programs")
	}

	if len(p.Alipay.MiniPrograms) > 0 {
		o := alipay.Options{Endpoint: p.Alipay.Endpoint, Logger: a.log}
		for _, m := range p.Alipay.MiniPrograms {
			mp := alipay.MiniProgram{App: m.App, AppID: m.AppID, PrivateKey: m.PrivateKey, AlipayPublicKey: m.AlipayPublicKey, OpenID: m.OpenID}
			for _, t := range m.Templates {
				mp.Templates = append(mp.Templates, alipay.Template{Category: t.Category, TemplateID: t.TemplateID, Page: t.Page, Fields: t.Fields})
				templates = append(templates, miniprogram.Template{Kind: channel.Alipay, App: m.App, Category: t.Category, ID: t.TemplateID, LongTerm: t.LongTerm})
			}
			o.MiniPrograms = append(o.MiniPrograms, mp)
		}
		s, err := alipay.New(o)
		if err != nil {
			return nil, fmt.Errorf("app: push.alipay: %w", err)
		}
		senders, registrars = append(senders, s), append(registrars, s)
		onChannel("alipay", d != nil && d.Alipay != nil)
	} else {
		off("Alipay subscription message", "push.alipay has no mini-programs")
	}

	a.MiniPrograms, err = miniprogram.New(miniprogram.Options{Store: a.Store, KEK: kek, Registrars: registrars, Templates: templates})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if a.devSinks != nil {
		a.devSinks.templates = templates
	}
	return senders, nil
}

// devChannels sets up, for each channel the configuration leaves empty, its local sink and the
// channel's configuration pointing at it: an APNs server over HTTP/2 with TLS on a port of its
// own (APNs speaks nothing else), Push Kit, WeChat and Alipay under /dev/{channel}/ of this
// server. Every member app gets a WeChat and an Alipay mini-program with a template per
// category, long-term (as government services may have), and a bundle id on APNs.
func (a *App) devChannels(p *config.Push) error {
	d := &devSinks{appIDs: map[channel.Kind]map[string]string{channel.WeChat: {}, channel.Alipay: {}}}
	a.devSinks = d
	base := a.cfg.PublicURL
	var apps []string
	for _, ap := range a.cfg.Apps() {
		apps = append(apps, ap.ID)
	}
	slices.Sort(apps)

	if !p.APNs.Enabled() && p.APNs.KeyID == "" {
		d.APNs = fakeapns.NewServer()
		p8, key, err := fakeapns.GenerateKey()
		if err != nil {
			return err
		}
		const keyID, team = "DEVKEY0001", "DEVTEAM001"
		d.APNs.AddKey(team, keyID, &key.PublicKey)
		p.APNs = config.APNs{Key: string(p8), KeyID: keyID, TeamID: team, Topics: map[string]string{}}
		for _, app := range apps {
			p.APNs.Topics[app] = "cn.gov.dev." + app
		}
		d.APNs.AddTopics(slices.Collect(maps.Values(p.APNs.Topics))...)
		d.apnsRun = d.APNs.Start()
		p.APNs.Endpoint = d.apnsRun.URL
	}
	if !p.HMS.Enabled() {
		d.HMS = fakehms.NewServer("tongban-dev")
		key, err := d.HMS.NewServiceAccount()
		if err != nil {
			return err
		}
		p.HMS.Credentials, p.HMS.Endpoint = string(key), base+"/dev/hms/push"
	}
	cats := catalog.Categories()
	if len(p.WeChat.MiniPrograms) == 0 {
		d.WeChat = fakewechat.New()
		for i, app := range apps {
			appID, secret := fmt.Sprintf("wxdev%011d", i+1), randomHex(16)
			d.WeChat.AddApp(appID, secret)
			d.appIDs[channel.WeChat][app] = appID
			m := config.WeChatMiniProgram{App: app, AppID: appID, Secret: secret}
			for j, c := range cats {
				t := config.MiniProgramTemplate{Category: c, TemplateID: fmt.Sprintf("wx-%s-%02d", app, j), Page: "pages/notice/index?id={id}", LongTerm: true,
					Fields: map[string]string{"thing1": "title", "thing2": "service", "time3": "time", "thing4": "body"}}
				d.WeChat.AddTemplate(appID, t.TemplateID, "thing1", "thing2", "time3", "thing4")
				m.Templates = append(m.Templates, t)
			}
			p.WeChat.MiniPrograms = append(p.WeChat.MiniPrograms, m)
		}
		p.WeChat.Endpoint = base + "/dev/wechat"
	}
	if len(p.Alipay.MiniPrograms) == 0 {
		fake, err := fakealipay.New()
		if err != nil {
			return err
		}
		d.Alipay = fake
		for i, app := range apps {
			appID := fmt.Sprintf("20210000%08d", i+1)
			priv, err := fake.NewApp(appID)
			if err != nil {
				return err
			}
			d.appIDs[channel.Alipay][app] = appID
			m := config.AlipayMiniProgram{App: app, AppID: appID, PrivateKey: priv, AlipayPublicKey: fake.PublicKey()}
			for j, c := range cats {
				t := config.MiniProgramTemplate{Category: c, TemplateID: fmt.Sprintf("ali-%s-%02d", app, j), Page: "pages/notice/index?id={id}", LongTerm: true,
					Fields: map[string]string{"keyword1": "title", "keyword2": "service", "keyword3": "date", "keyword4": "body"}}
				fake.AddTemplate(appID, t.TemplateID, "keyword1", "keyword2", "keyword3", "keyword4")
				m.Templates = append(m.Templates, t)
			}
			p.Alipay.MiniPrograms = append(p.Alipay.MiniPrograms, m)
		}
		p.Alipay.Endpoint = base + "/dev/alipay/gateway.do"
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
